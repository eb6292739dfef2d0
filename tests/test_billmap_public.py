"""The public bill-mapping names stay importable from the paths the README documents."""


def test_the_readme_import_of_billmap_gives_mapped_bill_and_billed_daily():
    import costkit
    from costkit.billmap import billed_daily, mapped_bill
    from costkit.sources.bills.mapping import billed_daily as daily_home
    from costkit.store.bills import mapped_bill as mapped_home

    assert mapped_bill is mapped_home is costkit.mapped_bill
    assert billed_daily is daily_home
