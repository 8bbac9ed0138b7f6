"""The pipeline aggregate: stage definitions, versioned (each ``PipelineDefined`` is a version)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from services.deals.domain.errors import InvalidCommandError
from services.deals.domain.forms import StageField
from services.deals.events import Name, PipelineDefined, StageDefinition, StageKind, StageSnapshot
from shared.core.decider import Decider
from shared.core.events import DomainEvent
from shared.core.limits import MAX_TEXT_CHARS

DEFAULT_PIPELINE_ID = "default"
DEFAULT_STAGES = (
    StageDefinition(
        stage_id="target_identified",
        name="Target identified",
        order=10,
        probability=Decimal("0.10"),
        stuck_after_days=14,
    ),
    StageDefinition(stage_id="contacted", name="Contacted", order=20, probability=Decimal("0.20"), stuck_after_days=10),
    StageDefinition(
        stage_id="needs_discussed", name="Needs discussed", order=30, probability=Decimal("0.40"), stuck_after_days=14
    ),
    StageDefinition(
        stage_id="quote_sent", name="Quote sent", order=40, probability=Decimal("0.60"), stuck_after_days=10
    ),
    StageDefinition(
        stage_id="negotiation", name="Negotiation", order=50, probability=Decimal("0.80"), stuck_after_days=14
    ),
    StageDefinition(stage_id="won", name="Won", order=60, probability=Decimal(1), kind=StageKind.WON),
    StageDefinition(stage_id="lost", name="Lost", order=70, probability=Decimal(0), kind=StageKind.LOST),
)


@dataclass(frozen=True)
class Pipeline:
    pipeline_id: str = ""
    name: str = ""
    version: int = 0
    stages: tuple[StageDefinition, ...] = ()

    @property
    def exists(self) -> bool:
        return self.version > 0

    def stage(self, stage_id: str) -> StageDefinition:
        for s in self.stages:
            if s.stage_id == stage_id:
                return s
        raise InvalidCommandError("unknown_stage", f"pipeline {self.pipeline_id} has no stage {stage_id!r}")

    def open_stages(self) -> list[StageDefinition]:
        return sorted((s for s in self.stages if s.kind == StageKind.OPEN), key=lambda s: s.order)

    def of_kind(self, kind: StageKind) -> StageDefinition:
        return next(s for s in self.stages if s.kind == kind)


def snapshot(stage: StageDefinition) -> StageSnapshot:
    return StageSnapshot(
        stage_id=stage.stage_id, name=stage.name, order=stage.order, probability=stage.probability, kind=stage.kind
    )


def evolve_pipeline(state: Pipeline, event: DomainEvent) -> Pipeline:
    if isinstance(event, PipelineDefined):
        return Pipeline(event.pipeline_id, event.name, state.version + 1, event.stages)
    return state


pipeline_decider = Decider(initial=Pipeline(), evolve=evolve_pipeline)


class DefinePipeline(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT_CHARS)
    name: Name
    stages: tuple[StageField, ...] = Field(min_length=3, max_length=30)
    reason: str | None = None


def define_pipeline(state: Pipeline, pipeline_id: str, cmd: DefinePipeline) -> list[DomainEvent]:
    if state.exists and state.name == cmd.name and state.stages == cmd.stages:
        return []  # the same definition again changes nothing
    return [PipelineDefined(pipeline_id=pipeline_id, name=cmd.name, stages=cmd.stages, reason=cmd.reason)]
