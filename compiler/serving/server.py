"""The HTTP feature server (`skewless serve`): online features and on-demand features over JSON.

It serves what target/manifest.json describes (written by `skewless compile` and `run`) and never compiles per
request: the serving catalog (online models, schema versions, on-demand callables, feature services) is built
when the manifest is loaded, and rebuilt when the file changes (checked every few seconds) or on SIGHUP.

    POST /get-online-features   {"features": [...]} or {"feature_service": "name"}, "entities": {"user_id": [...]}
    POST /push                  {"stream": "name", "events": [{column: value, ...}, ...]}: append events
    GET  /features              the catalog: every servable feature, feature services
    GET  /health                200 when the online store answers, 503 otherwise
    GET  /metrics               Prometheus text: request counts and a latency histogram per endpoint, and each
                                stream's length, pending entries, lag, oldest pending age and late entries
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from skewless.core.errors import AdapterError, SkewlessError
from skewless.core.features import UnknownFeature
from skewless.core.secrets import mask_secrets
from skewless.online import jsonform
from skewless.online.catalog import ServingCatalog
from skewless.online.events import stream_key, to_text
from skewless.online.reader import OnlineReader
from skewless.online.store import OnlineStore

log = logging.getLogger("skewless.serve")

LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1 << 20
    max_entities: int = 1000
    max_features: int = 500
    body_seconds: float = 10.0  # a client that takes longer to send its body is answered 408


class RequestError(Exception):
    """A client mistake: answered with its status code and a message that says what to change."""

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.hint = hint


def _response(payload: Any, status: int = 200) -> Response:
    return Response(jsonform.dumps(payload), status_code=status, media_type="application/json")


class FeatureServer:
    """The server's state: an online store, the loaded manifest, metrics. Tests call it directly.

    Built by `FeatureStore.feature_server()`; `write_manifest` writes target/manifest.json again (by compiling)
    when it is missing or from an older skewless, so this module never imports the compiler."""

    def __init__(self, online_store: OnlineStore, manifest_path: Path, *, limits: Limits | None = None,
                 reload_interval: float = 2.0, write_manifest: Callable[[], object] | None = None,
                 on_close: Callable[[], None] | None = None) -> None:
        self.online_store = online_store
        self.manifest_path = manifest_path
        self.limits = limits or Limits()
        self.reload_interval = reload_interval
        self._write_manifest = write_manifest
        self._on_close = on_close
        self._stamp: tuple[int, int] | None = None
        self.reader: OnlineReader | None = None
        self.loaded_at: str | None = None
        self.registry = CollectorRegistry()
        self.requests = Counter("skewless_requests", "HTTP requests by endpoint and status code",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("skewless_request_seconds", "Time to answer a request, by endpoint",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.entities = Counter("skewless_entities", "Entity rows served", registry=self.registry)
        self.reloads = Counter("skewless_manifest_loads", "Times the manifest was (re)loaded",
                               registry=self.registry)
        self.pushed = Counter("skewless_pushed_events", "Events appended by POST /push", registry=self.registry)
        self.registry.register(_StreamCollector(self))
        try:
            self.reload(force=True)
        except SkewlessError:  # a manifest this version cannot serve from: write it again, once
            if self._write_manifest is None:
                raise
            self._write_manifest()
            self.reload(force=True)

    # -- manifest ----------------------------------------------------------------------------------------

    def reload(self, force: bool = False) -> bool:
        """Load the manifest if it changed (or `force`); the old catalog keeps serving if the new one is bad."""
        if not self.manifest_path.is_file():
            if self._write_manifest is None:
                raise SkewlessError(f"no manifest at {self.manifest_path}", hint="run `skewless compile` first")
            self._write_manifest()
        stat = self.manifest_path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if not force and stamp == self._stamp:
            return False
        try:
            manifest = orjson.loads(self.manifest_path.read_bytes())
        except orjson.JSONDecodeError as error:
            raise SkewlessError(f"{self.manifest_path} is not JSON: {error}",
                                hint="run `skewless compile` to write it again") from None
        catalog = ServingCatalog.from_manifest(manifest)
        self.reader = OnlineReader(catalog, self.online_store)
        self.loaded_at = manifest["metadata"].get("generated_at")  # a mapping: from_manifest read it
        self._stamp = stamp
        self.reloads.inc()
        return True

    @property
    def catalog(self) -> ServingCatalog:
        assert self.reader is not None
        return self.reader.catalog

    # -- requests --------------------------------------------------------------------------------------

    def get_online_features(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The POST /get-online-features answer for a parsed JSON body."""
        if not isinstance(body, Mapping):
            raise RequestError(400, "the body must be a JSON object",
                               hint='{"features": ["user__txn_count__7d"], "entities": {"user_id": [1, 2]}}')
        unknown = set(body) - {"features", "feature_service", "entities", "full_feature_names"}
        if unknown:
            raise RequestError(400, f"unknown key(s) {sorted(unknown)} in the body",
                               hint="use features or feature_service, and entities")
        features = body.get("features")
        service = body.get("feature_service")
        if (features is None) == (service is None):
            raise RequestError(400, "give either 'features' (a list of names) or 'feature_service' (a name)")
        if service is not None:
            if not isinstance(service, str):
                raise RequestError(400, "'feature_service' must be a string")
            references = [f"service:{service}"]
        else:
            if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
                raise RequestError(400, "'features' must be a non-empty list of feature names")
            references = features
        if len(references) > self.limits.max_features:
            raise RequestError(413, f"at most {self.limits.max_features} features per request")
        entities = body.get("entities")
        if not isinstance(entities, Mapping) or not entities:
            raise RequestError(400, "'entities' must be an object of columns: {\"user_id\": [1, 2]}")
        lengths = {name: len(column) if isinstance(column, list) else -1 for name, column in entities.items()}
        if any(n < 0 for n in lengths.values()):
            raise RequestError(400, "each entity column must be a list of values",
                               hint=f"got {', '.join(k for k, n in lengths.items() if n < 0)}")
        if len(set(lengths.values())) != 1:
            raise RequestError(400, f"entity columns have different lengths: {lengths}")
        count = next(iter(lengths.values()))
        if count > self.limits.max_entities:
            raise RequestError(413, f"{count} entity rows: at most {self.limits.max_entities} per request",
                               hint="split the request")
        reader = self.reader
        assert reader is not None
        try:
            names = reader.catalog.resolve(references)
        except SkewlessError as error:
            raise RequestError(404 if isinstance(error, UnknownFeature) else 400, error.headline, error.hint) from None
        try:
            result = reader.read_columns(entities, count, names)
        except AdapterError:
            raise  # the online store: answered 503 by the endpoint
        except SkewlessError as error:
            raise RequestError(400, error.headline, error.hint) from None
        self.entities.inc(count)
        feature_names = list(result)
        return {
            "metadata": {"feature_names": feature_names},
            "results": [{"values": jsonform.json_column(result[name])} for name in feature_names],
        }

    def push(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The POST /push answer: the events appended to the stream (checked against its source), their ids."""
        if not isinstance(body, Mapping) or set(body) != {"stream", "events"}:
            raise RequestError(400, "the body must be {\"stream\": NAME, \"events\": [{column: value, ...}]}")
        stream, rows = body["stream"], body["events"]
        streams = self.catalog.streams
        if not isinstance(stream, str) or stream not in streams:
            raise RequestError(404, f"no model is fed by stream {stream!r}",
                               hint=f"streams: {', '.join(streams) or 'none'}")
        if not isinstance(rows, list) or not rows or not all(isinstance(r, Mapping) for r in rows):
            raise RequestError(400, "'events' must be a non-empty list of objects (column -> value)")
        if len(rows) > self.limits.max_entities:
            raise RequestError(413, f"{len(rows)} events: at most {self.limits.max_entities} per request",
                               hint="split the request")
        try:
            fields = [to_text(row, streams[stream], stream) for row in rows]
        except SkewlessError as error:
            raise RequestError(400, error.headline, error.hint) from None
        ids = self.online_store.append_events(stream_key(self.catalog.project, stream), fields)
        self.pushed.inc(len(ids))
        return {"stream": stream, "ids": ids}

    def stream_metrics(self) -> list[Any]:
        """Gauges of each stream's health, read from the online store at scrape time."""
        from prometheus_client.core import GaugeMetricFamily

        names = {"length": "entries in the stream", "pending": "entries delivered and not acknowledged",
                 "lag": "entries not yet delivered to the group", "entries_read": "entries the group has read",
                 "oldest_pending_ms": "age of the oldest pending entry, milliseconds",
                 "late": "late or invalid entries kept aside"}
        families = {key: GaugeMetricFamily(f"skewless_stream_{key}", text, labels=["stream"])
                    for key, text in names.items()}
        for stream in self.catalog.streams:
            health = self.online_store.stream_health(stream_key(self.catalog.project, stream), "skewless")
            for key, family in families.items():
                if health.get(key) is not None:
                    family.add_metric([stream], float(health[key]))
        return list(families.values())

    def features(self) -> dict[str, Any]:
        return {"features": self.catalog.catalog(), "feature_services": self.catalog.services,
                "manifest_generated_at": self.loaded_at}

    def health(self) -> tuple[int, dict[str, Any]]:
        try:
            self.online_store.ping()
            return 200, {"status": "ok", "manifest_generated_at": self.loaded_at}
        except SkewlessError as error:  # the store's own message: located, and free of secrets
            return 503, {"status": "unavailable", "error": str(error)}
        except Exception as error:  # noqa: BLE001 - whatever keeps the store from answering, health says so
            return 503, {"status": "unavailable",
                         "error": f"online store {self.online_store.description}: {type(error).__name__}"}

    # -- the ASGI app ----------------------------------------------------------------------------------------

    def app(self) -> Starlette:
        async def get_online_features(request: Request) -> Response:
            body = await self._json_body(request)
            # The online store read blocks: it runs on a worker thread, never on the event loop's.
            return _response(await run_in_threadpool(self.get_online_features, body))

        async def push(request: Request) -> Response:
            return _response(await run_in_threadpool(self.push, await self._json_body(request)))

        async def features(request: Request) -> Response:
            return _response(self.features())

        async def health(request: Request) -> Response:
            status, payload = await run_in_threadpool(self.health)
            return _response(payload, status)

        async def metrics(request: Request) -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        def measured(name: str, handler: Callable[[Request], Awaitable[Response]]) -> Callable[..., Any]:
            latency = self.latency.labels(name)

            async def endpoint(request: Request) -> Response:
                started = time.perf_counter()
                try:
                    response = await handler(request)
                except RequestError as error:
                    response = _response({"error": mask_secrets(str(error)), "hint": mask_secrets(error.hint or "")
                                          or None}, error.status)
                except SkewlessError as error:  # the online store is down: not the client's fault
                    response = _response({"error": error.headline, "hint": mask_secrets(error.hint or "") or None},
                                         503)
                except Exception:  # a bug in skewless: logged with its traceback, answered 500, counted
                    log.exception("%s failed", name)
                    response = _response({"error": "internal error: the server logged the details",
                                          "hint": "this is a bug in skewless; please report it"}, 500)
                latency.observe(time.perf_counter() - started)
                self.requests.labels(name, str(response.status_code)).inc()
                return response
            return endpoint

        async def watch_manifest() -> None:
            while True:
                await asyncio.sleep(self.reload_interval)
                self._reload_quietly()

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            loop = asyncio.get_running_loop()
            task = loop.create_task(watch_manifest()) if self.reload_interval > 0 else None
            gc.freeze()  # the catalog and the libraries live as long as the server: keep them out of GC scans
            try:
                loop.add_signal_handler(signal.SIGHUP, lambda: self._reload_quietly(force=True))
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no SIGHUP
                pass
            yield
            if task is not None:
                task.cancel()

        routes = [
            Route("/get-online-features", measured("get-online-features", get_online_features), methods=["POST"]),
            Route("/push", measured("push", push), methods=["POST"]),
            Route("/features", measured("features", features), methods=["GET"]),
            Route("/health", measured("health", health), methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
        return Starlette(routes=routes, lifespan=lifespan)

    async def _json_body(self, request: Request) -> Any:
        """The parsed JSON body, within the size and time limits."""
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > self.limits.max_body_bytes:
            raise RequestError(413, f"the body is over {self.limits.max_body_bytes} bytes")
        try:
            raw = await asyncio.wait_for(self._read_body(request), self.limits.body_seconds)
        except asyncio.TimeoutError:
            raise RequestError(408, f"the body did not arrive within {self.limits.body_seconds:g} s") from None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise RequestError(400, f"the body is not JSON: {error}") from None

    async def _read_body(self, request: Request) -> bytes:
        """The body, refused with 413 as soon as it passes the limit (a chunked body is never buffered whole)."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.limits.max_body_bytes:
                raise RequestError(413, f"the body is over {self.limits.max_body_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _reload_quietly(self, force: bool = False) -> None:
        try:
            self.reload(force=force)
        except Exception as error:  # noqa: BLE001 - a half-written or broken manifest: keep serving the old one
            log.warning("manifest not reloaded, the previous one keeps serving: %s", error)

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()


class _StreamCollector:
    """Streams' health for /metrics, read when Prometheus scrapes (a store that is down: no stream gauges)."""

    def __init__(self, server: FeatureServer) -> None:
        self.server = server

    def collect(self) -> list[Any]:
        try:
            return self.server.stream_metrics()
        except SkewlessError:
            return []

    def describe(self) -> list[Any]:
        return []
