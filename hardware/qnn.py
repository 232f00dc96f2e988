"""Qualcomm AI Engine (QNN / Hexagon NPU): detection only.

Running QNN needs a Snapdragon device with the QNN SDK and ONNX Runtime's QNN execution
provider; perfcast only detects it and says clearly why it cannot run here.
"""
from __future__ import annotations

import platform
from dataclasses import dataclass

from engine.catalog import HardwareEntry
from engine.errors import NotAvailableError
from engine.records import Measurement
from hardware.base import AdapterBase, BenchmarkSpec


@dataclass
class QNNAdapter(AdapterBase):
    name: str = "qnn"
    runtime: str = "qnn"
    platform: str = "qnn"

    def available(self) -> tuple[bool, str]:
        try:
            import onnxruntime as ort

            if "QNNExecutionProvider" in ort.get_available_providers():
                return False, ("ONNX Runtime's QNN execution provider is present, but perfcast's QNN adapter is "
                               "detection-only; measure with --runtime onnxruntime on the device")
        except ImportError:
            pass
        return False, (f"QNN (Qualcomm Hexagon NPU) is not available on this machine ({platform.machine()}, "
                       "no QNNExecutionProvider in onnxruntime); it needs a Snapdragon device with the QNN SDK")

    def hardware_id(self) -> str:
        return "qnn-hexagon"

    def detect(self) -> HardwareEntry:
        ok, why = self.available()
        raise NotAvailableError(why)

    def run_inline(self, spec: BenchmarkSpec) -> Measurement:
        ok, why = self.available()
        raise NotAvailableError(why)
