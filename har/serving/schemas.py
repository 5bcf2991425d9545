"""Request/response models of the HTTP API.

The public models (``PredictRequest``, ``RecordingRequest``, …) document the API in OpenAPI.
Requests are *validated* with the ``*Envelope`` models, which check every field except the big
numeric arrays; those go straight from the parsed JSON into numpy (``np.asarray``), which is
~10× faster than pydantic validating a list of floats one by one and gives the same checks
(shape, finiteness, numeric type) with messages naming the first offending index.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Sensor rates the recording endpoint accepts: every phone and watch IMU lies inside. Below 1 Hz a
# handful of samples would resample into thousands of windows (docs/serving.md#limits).
MIN_RATE_HZ = 1.0
MAX_RATE_HZ = 2000.0
# Segment times are start_time_s + offsets: bounded so they stay exact in float64 JSON numbers.
# 1e10 s is a Unix time in the year 2286; milliseconds since the epoch (~1.7e12) are refused.
MAX_START_TIME_S = 1e10


class _Strict(BaseModel):
    # strict: no coercion ("50" → 50.0, true → 1.0, "yes" → True are all 422)
    model_config = ConfigDict(extra="forbid", strict=True)


class PredictRequest(_Strict):
    """One or more raw windows in physical units (acc in g, gyro in rad/s)."""

    channels: list[str] = Field(min_length=1, description="names of the columns of every sample; "
                                "reordered to the model's channel order by name",
                                examples=[["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]])
    windows: list[list[list[float]]] = Field(
        description="n windows × window_len samples × len(channels) values")
    return_probs: bool = Field(False, description="include the class probabilities per window")


class RecordingRequest(_Strict):
    """A continuous recording at any sampling rate; resampled to the model rate and windowed."""

    rate_hz: float = Field(ge=MIN_RATE_HZ, le=MAX_RATE_HZ, description="sampling rate of `samples`")
    channels: list[str] = Field(min_length=1)
    samples: list[list[float]] = Field(description="N samples × len(channels) values")
    start_time_s: float = Field(0.0, ge=0, le=MAX_START_TIME_S,
                                description="time of the first sample (s); segment times add it")


class PredictEnvelope(_Strict):
    channels: list[str] = Field(min_length=1)
    windows: Any
    return_probs: bool = False


class RecordingEnvelope(_Strict):
    rate_hz: float = Field(ge=MIN_RATE_HZ, le=MAX_RATE_HZ, allow_inf_nan=False)
    channels: list[str] = Field(min_length=1)
    samples: Any
    start_time_s: float = Field(0.0, ge=0, le=MAX_START_TIME_S, allow_inf_nan=False)


class WindowPrediction(BaseModel):
    activity: str
    class_id: int
    confidence: float = Field(description="probability of `activity`")
    probs: list[float] | None = Field(None, description="per class, in the order of `classes`")


class ModelRef(BaseModel):
    name: str | None
    version: str | None


class PredictResponse(BaseModel):
    model: ModelRef
    classes: list[str]
    predictions: list[WindowPrediction]


class SegmentOut(BaseModel):
    start_s: float
    end_s: float
    activity: str
    confidence: float = Field(description="mean probability of `activity` over the segment's windows")


class RecordingResponse(BaseModel):
    model: ModelRef
    rate_hz: float = Field(description="model rate the recording was resampled to")
    n_windows: int
    segments: list[SegmentOut]


class WindowSpecOut(BaseModel):
    rate_hz: float
    window_len: int
    window_s: float
    overlap: float
    step: int


class ModelInfo(BaseModel):
    name: str | None
    version: str | None
    model_type: str
    source_uri: str
    run_id: str | None
    classes: list[str]
    channels: list[str]
    window: WindowSpecOut
    quantization: str = Field("none", description="none (fp32) or int8-static-qdq")
    metrics: dict[str, float]
    loaded_at: str


class ReloadResponse(BaseModel):
    reloaded: bool
    version: str | None
    error: str | None


class ErrorResponse(BaseModel):
    detail: str


class HealthResponse(BaseModel):
    status: str


class ReadyResponse(BaseModel):
    status: str
    version: str | None
    source: str = Field(description="`ok`, or why the model source cannot be reached (the loaded "
                                    "model keeps serving)")


REQUEST_MODELS: list[type[BaseModel]] = [PredictRequest, RecordingRequest]
