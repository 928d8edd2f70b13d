"""Dynamic batching, requests in flight (503) and timeouts (504), with concurrent requests."""
import asyncio
import threading
import time

import httpx
import pytest

from centaur.serve.app import create_app
from centaur.serve.batcher import Batcher
from centaur.serve.settings import ServeSettings

from serve_helpers import png_bytes


def run(coro):
    return asyncio.run(coro)


def test_concurrent_submissions_run_as_batches_in_order():
    sizes, threads = [], set()

    def double(xs):
        sizes.append(len(xs))
        threads.add(threading.current_thread().name)
        time.sleep(0.02)  # a model call takes time, so later requests gather meanwhile
        return [x * 2 for x in xs]

    async def main():
        batcher = Batcher(double, max_batch_size=4, max_wait_ms=20)
        batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(i) for i in range(10)))
        finally:
            await batcher.stop()

    assert run(main()) == [2 * i for i in range(10)]
    assert sum(sizes) == 10 and max(sizes) == 4 and len(sizes) <= 4  # gathered, never above the maximum
    assert threads and all(name.startswith("centaur-model") for name in threads)  # never on the event loop


def test_a_lone_request_waits_at_most_max_wait():
    async def main():
        batcher = Batcher(lambda xs: xs, max_batch_size=64, max_wait_ms=30)
        batcher.start()
        t0 = time.perf_counter()
        await batcher.submit(1)
        elapsed = time.perf_counter() - t0
        await batcher.stop()
        return elapsed

    assert run(main()) < 1.0  # 30 ms plus scheduling; far from waiting for 64 requests


def test_an_error_in_one_item_or_the_whole_batch_reaches_only_its_requests():
    def run_batch(xs):
        if 0 in xs:
            raise RuntimeError("the model failed")
        return [ValueError("bad item") if x < 0 else x for x in xs]

    async def main():
        batcher = Batcher(run_batch, max_batch_size=8, max_wait_ms=5)
        batcher.start()
        results = await asyncio.gather(batcher.submit(1), batcher.submit(-1), return_exceptions=True)
        alone = await asyncio.gather(batcher.submit(0), return_exceptions=True)
        after = await batcher.submit(3)  # the loop survives both
        await batcher.stop()
        return results, alone, after

    (ok, bad), (failed,), after = run(main())
    assert ok == 1 and isinstance(bad, ValueError) and isinstance(failed, RuntimeError) and after == 3


async def _serve(tiny_model, tmp_path, **settings):
    """(app, client) with the lifespan run, on an in-process ASGI transport."""
    app = create_app(ServeSettings(model_dir=tiny_model, feedback_db=tmp_path / "f.sqlite", **settings))
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    return app, client, lifespan


def _post_image(client, **kw):
    return client.post("/predict", content=png_bytes(), headers={"content-type": "image/png"}, **kw)


def test_concurrent_requests_share_model_calls(tiny_model, tmp_path):
    async def main():
        app, client, lifespan = await _serve(tiny_model, tmp_path, max_batch_size=8, max_wait_ms=50)
        try:
            responses = await asyncio.gather(*(_post_image(client) for _ in range(8)))
            metrics = (await client.get("/metrics")).text
        finally:
            await client.aclose()
            await lifespan.__aexit__(None, None, None)
        return responses, metrics

    responses, metrics = run(main())
    assert all(r.status_code == 200 for r in responses)
    assert len({r.json()["label"] for r in responses}) == 1
    count = float(next(l for l in metrics.splitlines() if l.startswith("centaur_batch_size_count")).split()[-1])
    total = float(next(l for l in metrics.splitlines() if l.startswith("centaur_batch_size_sum")).split()[-1])
    assert total == 8 and count < 8  # 8 requests in fewer model calls


def test_too_many_in_flight_gets_503_with_retry_after(tiny_model, tmp_path):
    async def main():
        # the first request waits 300 ms in the batcher for company, holding its place in flight
        app, client, lifespan = await _serve(tiny_model, tmp_path, max_in_flight=1, max_batch_size=64,
                                             max_wait_ms=300)
        try:
            first = asyncio.ensure_future(_post_image(client))
            await asyncio.sleep(0.1)
            second = await _post_image(client)
            health = await client.get("/health")
            return await first, second, health
        finally:
            await client.aclose()
            await lifespan.__aexit__(None, None, None)

    first, second, health = run(main())
    assert first.status_code == 200
    assert (second.status_code, second.json()["detail"]) == (503, "server busy")
    assert second.headers["retry-after"] == "1"
    assert health.status_code == 200  # monitoring is never refused


def test_a_slow_prediction_gets_504(tiny_model, tmp_path):
    async def main():
        app, client, lifespan = await _serve(tiny_model, tmp_path, timeout_s=0.05, max_batch_size=64,
                                             max_wait_ms=1000)
        try:
            slow = await _post_image(client)
        finally:
            await client.aclose()
            await lifespan.__aexit__(None, None, None)
        return slow

    slow = run(main())
    assert (slow.status_code, slow.json()["detail"]) == (504, "prediction timed out")


def test_heatmaps_drawn_at_once_with_batches_are_each_their_own(tiny_model, tmp_path):
    # Two people on the page at once: their heatmaps are computed in threads of their own while
    # the model thread runs batches of plain predictions on the same model.
    async def main():
        app, client, lifespan = await _serve(tiny_model, tmp_path, max_batch_size=8, max_wait_ms=20)
        try:
            alone = await _post_image(client, params={"explain": "true"})
            mixed = await asyncio.gather(*(_post_image(client, params={"explain": "true"} if i % 2 else None)
                                           for i in range(24)))
        finally:
            await client.aclose()
            await lifespan.__aexit__(None, None, None)
        return alone, mixed

    alone, mixed = run(main())
    assert alone.status_code == 200 and alone.json()["heatmap"].startswith("data:image/png;base64,")
    assert [r.status_code for r in mixed] == [200] * 24
    explained = [r.json() for i, r in enumerate(mixed) if i % 2]
    assert all(r["heatmap"] == alone.json()["heatmap"] for r in explained)  # the same image, the same map
    assert all("heatmap" not in r.json() for i, r in enumerate(mixed) if i % 2 == 0)


def test_people_contesting_at_the_same_moment_all_have_their_cases_kept(tiny_model, tmp_path):
    # the store's one SQLite connection is used from the server's threads at once
    async def main():
        app, client, lifespan = await _serve(tiny_model, tmp_path, max_batch_size=8, max_wait_ms=5)
        try:
            preds = await asyncio.gather(*(_post_image(client) for _ in range(24)))
            classes = (await client.get("/model")).json()["classes"]
            answers = [next(c for c in classes if c != p.json()["label"]) for p in preds]
            posted = await asyncio.gather(*(client.post("/feedback", json={
                "prediction_id": p.json()["prediction_id"], "correct": a}) for p, a in zip(preds, answers)))
        finally:
            await client.aclose()
            await lifespan.__aexit__(None, None, None)
        return posted, answers

    posted, answers = run(main())
    assert [r.status_code for r in posted] == [201] * 24
    import sqlite3
    rows = sqlite3.connect(tmp_path / "f.sqlite").execute("SELECT id, correct FROM feedback").fetchall()
    assert sorted(r.json()["id"] for r in posted) == sorted(i for i, _ in rows) and len(rows) == 24
