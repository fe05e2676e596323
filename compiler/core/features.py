"""Feature references and the one resolver of them, shared by training sets and serving.

A reference is a feature name, `model:*` (every feature of a model) or `service:NAME` (a feature service, which
may list other services). Training sets build the index from the compiled project, the feature server from
manifest.json; both resolve through `FeatureIndex.resolve`, so a reference means the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .errors import CompileError, did_you_mean


class UnknownFeature(CompileError):
    """A feature, feature service or model that the project does not have (HTTP 404)."""


@dataclass(frozen=True)
class FeatureInfo:
    name: str
    model: str
    entity: str | None  # None for on-demand features (they read features of any entity)
    on_demand: bool = False


@dataclass
class FeatureIndex:
    """Every feature by name (names are unique across entities: the compiler refuses a second definition)."""

    features: dict[str, FeatureInfo]
    services: Mapping[str, Sequence[str]] = field(default_factory=dict)  # service -> its references, as written
    models: dict[str, list[str]] = field(init=False)  # model -> its features, in order

    def __post_init__(self) -> None:
        self.models = {}
        for info in self.features.values():
            self.models.setdefault(info.model, []).append(info.name)

    def resolve(self, references: Sequence[str]) -> list[str]:
        """Feature names for references, in order, without repeats."""
        if all(r in self.features for r in references) and len(set(references)) == len(references):
            return list(references)  # plain feature names: the common case
        result: list[str] = []
        self._resolve(references, result, ())
        return result

    def _resolve(self, references: Sequence[str], result: list[str], within: tuple[str, ...]) -> None:
        for reference in references:
            if reference.startswith("service:"):
                service = reference.split(":", 1)[1]
                if service in within:
                    cycle = " -> ".join([*within[within.index(service):], service])
                    raise CompileError(f"feature services include each other in a cycle: {cycle}",
                                       hint="a feature service may list other services, but not itself")
                if service not in self.services:
                    raise UnknownFeature(f"no feature service named {service!r}",
                                         hint=did_you_mean(service, self.services) or
                                         "feature services are declared under feature_services: in datasets/*.yml")
                self._resolve(self.services[service], result, (*within, service))
                continue
            if reference.endswith(":*"):
                model = reference[:-2]
                if model not in self.models:
                    raise UnknownFeature(f"no model named {model!r} with features",
                                         hint=did_you_mean(model, self.models) or "`skewless ls` lists the models")
                names = self.models[model]
            elif reference in self.features:
                names = [reference]
            else:
                raise UnknownFeature(
                    f"unknown feature {reference!r}",
                    hint=did_you_mean(reference, self.features) or "`skewless ls` lists features; use model:* for "
                    "all of a model's features or service:NAME for a feature service",
                )
            result.extend(n for n in names if n not in result)
