"""Scrubbing of rendered reports before a gold-file comparison (shared by the forecast and audit tests)."""
import re


def scrub_html(html: str) -> str:
    """Blank the volatile parts (inline SVG charts, which depend on matplotlib's version and are checked by
    their own tests; generated-at; costkit version) and the inlined stylesheet, which is reports/*.css
    verbatim: the gold files compare the report's content, not a copy of the CSS."""
    html = re.sub(r'<svg class="chart-svg".*?</svg>', '<svg class="chart-svg">SCRUBBED</svg>', html, flags=re.S)
    html = re.sub(r'(class="generated-at">)[^<]*(<)', r"\1GENERATED-AT\2", html)
    html = re.sub(r'(class="costkit-version">)[^<]*(<)', r"\1VERSION\2", html)
    return re.sub(r"<style>.*?</style>", "<style>/* reports/*.css, inlined */</style>", html, flags=re.S)
