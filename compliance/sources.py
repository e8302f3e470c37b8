"""Where an audit's subscriptions and contacts come from: live ARM, the bundled demo
tenant on the local emulator, or an evidence bundle. Audit receives one (opened when Azure
is first asked) and never chooses; each decides the same way on the same answers
(compliance.arm.ContactReads)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compliance.arm import CLOUDS, ArmReader, make_credential
from compliance.arm.process import ProcessReader, Recipe
from compliance.audit import OpenSource, Settings


def cross_check(settings: Settings) -> tuple[str, ...]:
    """The Defender for Cloud assessments a run reads beside the contacts (none without
    --azure-cross-check)."""
    if not settings.cross_check:
        return ()
    from compliance.microsoft import ASSESSMENT_KEYS

    return ASSESSMENT_KEYS


def live(settings: Settings) -> ProcessReader:
    """ARM at the settings' cloud or endpoint, as the settings' credential; a large read in
    a child process that makes the same credential."""
    cloud = CLOUDS[settings.cloud]
    return ProcessReader(
        Recipe(settings.auth, settings.cloud, settings.tenant),
        make_credential(settings.auth, cloud, settings.tenant),
        cloud,
        settings.arm_endpoint,
        concurrency=settings.concurrency,
        limits=settings.limits,
        cross_check=cross_check(settings),
    )


class DemoReader(ArmReader):
    """The bundled demo tenant on a local emulator that lives as long as the reader."""

    def __init__(self, settings: Settings) -> None:
        from compliance.emulator import ArmEmulator, load_tenant

        self._emulator = ArmEmulator(load_tenant("demo")).start()
        super().__init__(
            self._emulator.credential(),
            CLOUDS[settings.cloud],
            self._emulator.url,
            self._emulator.ca_path,
            concurrency=settings.concurrency,
            limits=settings.limits,
            cross_check=cross_check(settings),
        )

    def close(self) -> None:
        super().close()
        self._emulator.stop()


def for_run(settings: Settings, bundle: Mapping[str, Any] | None) -> OpenSource:
    """The source a run's settings ask for: a replay of `bundle`, the demo, or live ARM."""
    if bundle is not None:
        from compliance.evidence import RecordedReader

        return lambda: RecordedReader(bundle, cross_check(settings))
    if settings.demo:
        return lambda: DemoReader(settings)
    return lambda: live(settings)
