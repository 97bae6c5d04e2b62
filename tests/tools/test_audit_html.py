"""``audit --format html``: one self-contained page, read back with an HTML parser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from click.testing import CliRunner

from cassette_proxy.cli import main
from cassette_proxy.models.events import ValidationRecord
from tests import log_lines
from tests.conftest import StartProxy
from tests.tools.test_audit import exchanges_in, make_logs

VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "source", "wbr", "area", "base"})


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parent: Element | None = None
    children: list[Element] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(self.texts) + "".join(child.text() for child in self.children)

    def descendants(self) -> Iterator[Element]:
        for child in self.children:
            yield child
            yield from child.descendants()

    def all(self, tag: str) -> list[Element]:
        return [element for element in self.descendants() if element.tag == tag]

    def by_id(self, anchor: str) -> Element:
        [found] = [e for e in self.all("section") if e.attrs.get("id") == anchor]
        return found


class Page(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.current = self.root
        self.feed(html)
        self.close()
        assert self.current is self.root, f"unclosed <{self.current.tag}>"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_endtag(self, tag: str) -> None:
        assert self.current.tag == tag, f"</{tag}> closes <{self.current.tag}>"
        assert self.current.parent is not None
        self.current = self.current.parent

    def handle_data(self, data: str) -> None:
        self.current.texts.append(data)


def table_rows(table: Element) -> list[list[str]]:
    return [[cell.text() for cell in row.children] for row in table.all("tr")]


def titled_tables(section: Element) -> list[tuple[str, Element]]:
    """Each table of a section with the text of the heading before it."""
    heading, found = "", []
    for element in section.descendants():
        if element.tag == "h3":
            heading = element.text()
        elif element.tag == "table":
            found.append((heading, element))
    return found


def html_report(*args: str) -> tuple[str, Page]:
    result = CliRunner().invoke(main, ["audit", "--format", "html", *args])
    assert result.exit_code == 0, result.output
    return result.stdout, Page(result.stdout)


def assert_self_contained(html: str, page: Page) -> None:
    """Nothing is fetched: no script, stylesheet, image or frame, no URL in any attribute or
    style; the only "http" is the SVG namespace, which names and loads nothing."""
    elements = list(page.root.descendants())
    fetching = {"script", "link", "img", "iframe", "object", "embed", "a", "use", "image"}
    assert not [e.tag for e in elements if e.tag in fetching]
    assert not [e.attrs for e in elements if {"src", "href", "srcset", "action"} & set(e.attrs)]
    assert not [e.attrs for e in elements if any(name.startswith("on") for name in e.attrs)]
    style = "".join(e.text() for e in page.root.all("style"))
    assert "url(" not in style
    assert "@import" not in style
    assert set(re.findall(r"https?://[^\"' ]+", html)) == {"http://www.w3.org/2000/svg"}
    assert html.count("http://") == len(page.root.all("svg"))


async def test_the_page_holds_the_text_reports_answers_and_loads_nothing(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    logs = await make_logs(start_proxy, tmp_path)
    events = exchanges_in(*logs)
    html, page = html_report(*map(str, logs))
    assert html.startswith("<!doctype html>")
    assert "12 exchanges" in page.root.all("title")[0].text()
    assert_self_contained(html, page)

    errors = table_rows(page.root.by_id("errors").all("table")[0])
    assert ["upstream_unreachable", "502", "2"] in [row[:3] for row in errors]
    assert ["cassette_miss", "501", "1"] in [row[:3] for row in errors]

    [header, *rows] = table_rows(page.root.by_id("routes").all("table")[0])
    statuses = sorted({e["status"] for e in events})
    assert header == ["route", *map(str, statuses), "total"]
    cancel = next(row for row in rows if row[0] == "cancel")
    assert cancel[1 + statuses.index(502)] == "2"

    [_, *slow] = table_rows(page.root.by_id("slowest").all("table")[0])
    slowest = sorted(events, key=lambda e: -e["duration_ms"])[:10]
    assert [row[6] for row in slow] == [e["id"] for e in slowest]

    # Requests over time: each column's tooltip counts its requests; together, all of them.
    time_chart = page.root.by_id("time").all("svg")[0]
    titles = {t.text() for t in time_chart.all("title")}
    counted = [re.search(r": ([\d,]+) requests, ([\d,]+) went wrong", t) for t in titles]
    assert sum(int(m[1].replace(",", "")) for m in counted if m) == 12
    assert sum(int(m[2].replace(",", "")) for m in counted if m) == 4

    latency = page.root.by_id("latency")
    assert len(latency.all("svg")) >= 2  # a distribution per route, and the median's split
    assert "p99" in {t.text() for t in latency.all("text")}

    pointers = page.root.by_id("findings")
    labels = {t.text() for t in pointers.all("svg")[0].all("title")}
    assert {
        "cancel response /status",
        "cancel response /id",
        "cancel response /brand_new_field",
    } <= labels
    drift = table_rows(pointers.all("table")[1])
    assert any('unknown status "paused"' in " ".join(row) for row in drift)


def test_streams_and_the_charts_of_a_larger_log(tmp_path: Path) -> None:
    log = tmp_path / "day.log"
    log.write_bytes(b"".join(log_lines.many_lines(12_000)))  # ten minutes at 20 a second
    html, page = html_report(str(log))
    assert_self_contained(html, page)
    streams = page.root.by_id("streams")
    assert "1,200 streams, 800 complete, 400 ended without a terminal event" in streams.text()
    bars = {t.text() for t in streams.all("svg")[0].all("title")}
    assert "response.created: 1,200 events" in bars
    # Only the streams logged a time to headers: its table is the latency section's, once.
    assert not streams.all("table")
    assert "Time to the upstream's headers: see the latency table of ttfb_ms" in streams.text()
    [ttfb_table] = [
        table
        for heading, table in titled_tables(page.root.by_id("latency"))
        if "(ttfb_ms)" in heading
    ]
    [_, *ttfb] = table_rows(ttfb_table)
    assert [row[:2] for row in ttfb] == [["(all)", "1,200"], ["passthrough", "1,200"]]
    columns = {t.text() for t in page.root.by_id("time").all("svg")[0].all("title")}
    assert len(columns) == 10
    assert "2026-11-22T07:03 (minute): 1,200 requests, 160 went wrong" in columns
    assert len(html) < 100_000  # aggregates only: 12,000 exchanges, tens of kilobytes


def test_log_text_is_escaped_never_markup(tmp_path: Path) -> None:
    hostile = [
        log_lines.exchange(
            n,
            route="<img src=x onerror=alert(1)>",
            error="</table><script>alert(2)</script>",
            validation={
                "response": ValidationRecord(
                    "failed",
                    [
                        {
                            "pointer": '/a"><svg onload=alert(3)>',
                            "severity": "error",
                            "kind": "type",
                            "message": "<script>alert(4)</script>",
                        }
                    ],
                )
            },
        )
        for n in range(3)
    ]
    log = tmp_path / "hostile.log"
    log.write_bytes(b"".join(log_lines.line(event) for event in hostile))
    html, page = html_report(str(log))
    assert_self_contained(html, page)
    assert page.root.all("svg")  # the charts are there, with the hostile labels
    assert not page.root.all("script")
    assert not page.root.all("img")
    text = page.root.text()
    for literal in ("<img src=x onerror=alert(1)>", "</table><script>alert(2)</script>",
                    "<script>alert(4)</script>", '/a"><svg onload=alert(3)>'):  # fmt: skip
        assert literal in text, literal
