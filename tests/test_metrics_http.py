"""`/metrics`: OpenMetrics when the scraper asks for it, Prometheus text
otherwise; HTTP requests counted by method, route template and status."""

import aiohttp
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.harness import Harness

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


async def _scrape(server: Harness, accept: str | None) -> tuple[str, str]:
    headers = {"Accept": accept} if accept else {}
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.url + "/metrics", headers=headers) as resp,
    ):
        assert resp.status == 200
        return resp.headers["Content-Type"], await resp.text()


def _requests(text: str) -> dict[tuple[str, str, str], float]:
    counted = {}
    for family in parse_text(text):
        for sample in family.samples:
            if sample.name == "droproom_http_requests_total":
                labels = sample.labels
                counted[(labels["method"], labels["route"], labels["status"])] = sample.value
    return counted


async def test_openmetrics_when_asked_text_otherwise(server: Harness) -> None:
    content_type, text = await _scrape(server, OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text")
    assert text.endswith("# EOF\n")
    assert any(f.name == "droproom_http_requests" for f in parse_om(text))
    content_type, text = await _scrape(server, None)
    assert content_type.startswith("text/plain; version=0.0.4")
    assert "# EOF" not in text


async def test_http_requests_are_counted_by_route_template(server: Harness) -> None:
    await server.create_room(id="m1", title="Counted")
    await server.create_room(id="m2", title="Counted too")
    for room in ("m1", "m2", "nope"):
        await server.request("GET", f"/api/v1/rooms/{room}", token=server.token(room, "a"))
    await server.request("GET", "/api/v1/rooms/m1")  # no token: 401
    await server.request("GET", "/no/such/page")
    async with aiohttp.ClientSession() as http:
        await (await http.request("PROPFIND", server.url + "/api/v1/rooms")).release()
    counted = _requests((await _scrape(server, None))[1])
    assert counted[("POST", "/api/v1/rooms", "201")] == 2
    assert counted[("GET", "/api/v1/rooms/{room}", "200")] == 2
    assert counted[("GET", "/api/v1/rooms/{room}", "404")] == 1
    assert counted[("GET", "/api/v1/rooms/{room}", "401")] == 1
    assert counted[("GET", "unmatched", "404")] == 1
    assert [n for (method, _, _), n in counted.items() if method == "other"] == [1]
    assert not any("m1" in route or "nope" in route for _, route, _ in counted)
