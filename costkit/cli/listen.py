"""Command: listen (IMM task notifications from an MNS queue into the store)."""
from __future__ import annotations

import signal
import sys
from contextlib import contextmanager

import click

from costkit.cli.conventions import info, quiet, quiet_option, store_option
from costkit.core.errors import BadInput


def _check(value, low, high, option):
    if value is not None and not (low <= value <= (high if high is not None else value)):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise BadInput(f"must be {bound}, got {value}", field=option)


def _check_writable(path: str) -> None:
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as e:
        raise BadInput(f"cannot append to the dead-letter file: {e.strerror}", path=path) from None


@contextmanager
def _stop_on_signals(listener):
    """SIGINT and SIGTERM end the loop after the batch in flight (see `Listener.stop`)."""
    def handler(signum, frame):
        listener.stop(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _progress():
    def show(s):
        click.echo(f"\rlisten: {s.messages} messages, {s.new} new, {s.updated} updated, {s.bad} bad",
                   err=True, nl=False)
    return show


def register(group: click.Group) -> None:
    @group.command("listen")
    @click.option("--endpoint", required=True,
                  help="MNS endpoint, e.g. https://<account-id>.mns.cn-hangzhou.aliyuncs.com.")
    @click.option("--queue", required=True, help="The MNS queue subscribed to IMM's notification topic.")
    @click.option("--region", help="Region for notifications whose subject does not name one.")
    @click.option("--batch", type=int, default=16, show_default=True, help="Messages per receive (1-16).")
    @click.option("--wait-seconds", type=int, default=30, show_default=True,
                  help="Long-polling wait per receive (0-30 s).")
    @click.option("--max-messages", type=int, help="Stop after receiving this many messages.")
    @click.option("--until-idle", type=float, help="Stop after this many seconds without a new message.")
    @click.option("--dead-letter", type=click.Path(dir_okay=False),
                  help="Append undecodable messages to this JSON Lines file and delete them from the queue "
                       "(default: leave them for the queue's dead-letter policy).")
    @store_option
    @quiet_option
    @click.pass_context
    def listen_cmd(ctx, endpoint, queue, region, batch, wait_seconds, max_messages, until_idle, dead_letter):
        """Store IMM task notifications from an MNS queue as they arrive: each batch is committed, then
        deleted from the queue. SIGINT/SIGTERM stop after the batch in flight. Credentials: the Alibaba
        Cloud default chain, e.g. ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET.

        \b
        Examples:
          costkit listen --store history.duckdb --endpoint https://1234.mns.cn-hangzhou.aliyuncs.com --queue imm
          costkit listen --endpoint https://1234.mns.cn-hangzhou.aliyuncs.com --queue imm --until-idle 60 -q
        """
        from costkit.sources.imm.mns import QueueClient
        from costkit.sources.imm.mns_listen import Listener, ListenOptions
        from costkit.store.listen import StoreSink

        _check(batch, 1, 16, "--batch")
        _check(wait_seconds, 0, 30, "--wait-seconds")
        _check(max_messages, 1, None, "--max-messages")
        if until_idle is not None and until_idle <= 0:
            raise BadInput(f"must be more than 0, got {until_idle}", field="--until-idle")
        if dead_letter:
            _check_writable(dead_letter)
        # Test seam: tests pass static test keys and a fast retry policy through the context object.
        extra = dict((ctx.obj or {}).get("listen_kwargs") or {})
        client = QueueClient(endpoint, queue, wait_seconds=wait_seconds, **extra)
        opts = ListenOptions(batch=batch, wait_seconds=wait_seconds, max_messages=max_messages,
                             until_idle=until_idle, default_region=region, dead_letter=dead_letter)
        tty = sys.stderr.isatty() and not quiet(ctx)
        listener = Listener(client, StoreSink(ctx.obj["store_path"], queue), opts,
                            log=lambda t: click.echo(("\n" if tty else "") + f"costkit: warning: {t}", err=True),
                            progress=_progress() if tty else None)
        with _stop_on_signals(listener):
            summary = listener.run()
        if tty:
            click.echo("", err=True)
        info(summary.line())
