"""``POST /v1/predict`` (windows) and ``POST /v1/predict/recording`` (a continuous recording).

Each request is turned into a checked float32 array by a plain function (``windows_from_body``,
``samples_from_body``). Small bodies are parsed and predicted right on the event loop: a thread
hop costs more than a tiny model's inference. Big ones go to the ``HEAVY_THREADS`` worker thread
(with the cyclic GC paused), so the event loop keeps answering between the GIL-holding steps and
only one body at a time becomes Python objects.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

from har.serving import schemas
from har.serving.inference_log import make_record
from har.serving.model import LoadedModel
from har.serving.payload import (
    PayloadError,
    channel_order,
    check_columns,
    check_content_type,
    check_ranges,
    envelope,
    numeric_array,
    parse_json,
    read_body,
)
from har.serving.routes.common import body_ref, errors, json_response
from har.serving.state import ServingState, model_of, state_of
from har.serving.timeline import Timeline, predict_timeline

router = APIRouter(tags=["predict"])

INLINE_MAX_BODY = 64 * 1024  # ~8 windows of JSON: parsed and predicted on the event loop
INLINE_MAX_WINDOWS = 32  # above this, inference moves off the event loop
_ERRORS = errors(400, 413, 415, 422, 503)


def _check_finite_output(probs: np.ndarray, field: str) -> None:
    # Inputs are range-checked, so this does not happen with an exported har model; if a model
    # still overflows, the client gets a 422 naming the window instead of nulls in the JSON.
    finite = np.isfinite(probs).all(axis=1)
    if not finite.all():
        i = int(np.argmin(finite))
        raise PayloadError(422, f"{field}[{i}]: the model's output is not finite for these values")


def _first_depth(value: Any) -> int:
    """Nesting depth along the first elements: a cheap look at the shape before converting."""
    depth = 0
    while isinstance(value, list) and value:
        depth, value = depth + 1, value[0]
    return depth


def windows_from_body(body: bytes, model: LoadedModel, state: ServingState) -> tuple[bool, np.ndarray]:
    """(return_probs, (n, window_len, C) float32 windows in model channel order) or PayloadError."""
    env = envelope(schemas.PredictEnvelope, parse_json(body))
    spec, serve = model.spec, state.serve
    order = channel_order(env.channels, model)
    raw, env.windows = env.windows, None  # only `raw` holds the parsed lists now
    if _first_depth(raw) == 3 and len(raw) > serve.max_windows:  # before the costly conversion
        raise PayloadError(422, f"windows: {len(raw)} windows; at most {serve.max_windows} "
                                "per request (serve.max_windows)")
    x = numeric_array(raw, "windows", 3, "n × window_len × channels")
    del raw
    if x.shape[1] != spec.window_len:
        raise PayloadError(422, f"windows: each window must have exactly {spec.window_len} samples "
                                f"({spec.window_s} s at {spec.rate_hz} Hz); got {x.shape[1]}")
    check_columns(x, env.channels, "windows")
    check_ranges(x, env.channels, "windows", state.limits)
    if order is not None:
        x = np.ascontiguousarray(x[:, :, order])
    return env.return_probs, x


def _predict_windows(body: bytes, model: LoadedModel, state: ServingState) -> tuple[bool, np.ndarray,
                                                                                     np.ndarray]:
    return_probs, x = windows_from_body(body, model, state)
    return return_probs, x, model.predict_proba(x)


def samples_from_body(body: bytes, model: LoadedModel, state: ServingState) -> tuple[Any, np.ndarray]:
    """(envelope, (N, C) float32 samples in model channel order) or PayloadError. Every cap is
    checked on the list lengths before the samples are converted."""
    env = envelope(schemas.RecordingEnvelope, parse_json(body))
    spec, serve = model.spec, state.serve
    if abs(env.rate_hz - spec.rate_hz) > 1e-9:
        from har.preprocess.signal import resample_factors  # scipy: only for recordings to resample

        try:  # the resampler's size is bounded before anything is allocated for it
            resample_factors(env.rate_hz, spec.rate_hz)
        except ValueError as err:
            raise PayloadError(422, f"rate_hz: {err}") from None
    order = channel_order(env.channels, model)
    raw, env.samples = env.samples, None
    if _first_depth(raw) == 2:  # well nested: the caps are checked before the costly conversion
        n = len(raw)
        if n > serve.max_samples:
            raise PayloadError(422, f"samples: {n} samples; at most {serve.max_samples} per request "
                                    "(serve.max_samples)")
        # Length after resampling (resample_poly's ceil) decides the windows.
        n_model = math.ceil(n * spec.rate_hz / env.rate_hz - 1e-9)
        if n_model < spec.window_len:
            raise PayloadError(422, f"samples: the recording lasts {n / env.rate_hz:.3f} s; at least "
                                    f"one window ({spec.window_s} s = {spec.window_len} samples at "
                                    f"{spec.rate_hz} Hz) is needed")
        n_windows = (n_model - spec.window_len) // spec.step + 1
        if n_windows > serve.max_windows:
            raise PayloadError(422, f"samples: the recording makes {n_windows} windows; at most "
                                    f"{serve.max_windows} per request (serve.max_windows)")
    x = numeric_array(raw, "samples", 2, "N samples × channels")
    del raw
    check_columns(x, env.channels, "samples")
    check_ranges(x, env.channels, "samples", state.limits)
    if order is not None:
        x = np.ascontiguousarray(x[:, order])
    return env, x


def _predict_recording(body: bytes, model: LoadedModel, state: ServingState) -> tuple[Any, Timeline]:
    env, x = samples_from_body(body, model, state)
    serve = state.serve
    tl = predict_timeline(model, x, env.rate_hz, serve.smoothing_windows, env.start_time_s,
                          method=serve.smoothing, switch_prob=serve.hmm_switch_prob)
    return env, tl


def _record(state: ServingState, endpoint: str, model: LoadedModel, windows: np.ndarray,
            pred: np.ndarray) -> None:
    classes = model.spec.classes
    state.metrics.count_predictions(classes, np.bincount(pred, minlength=len(classes)).tolist())
    if state.writer is not None:
        state.writer.write(make_record(endpoint, model.version, model.spec.channels, windows,
                                       [classes[i] for i in pred.tolist()]))


async def _body(request: Request, state: ServingState) -> bytes:
    check_content_type(request)
    return await read_body(request, state.serve.max_body_bytes)


@router.post("/v1/predict", response_model=schemas.PredictResponse, responses=_ERRORS,
             openapi_extra=body_ref("PredictRequest"))
async def predict(request: Request) -> Response:
    """Classify one or more raw windows (window_len samples each, any channel order)."""
    # state_of/model_of called directly: FastAPI's dependency solving measured ~17 µs per request
    # on the two hottest routes, where the whole single-window request costs ~500 µs
    state = state_of(request)
    model = model_of(state)
    body = await _body(request, state)
    if len(body) <= INLINE_MAX_BODY:
        return_probs, x = windows_from_body(body, model, state)
        if len(x) <= INLINE_MAX_WINDOWS:
            probs = model.predict_proba(x)
        else:
            probs = await state.run_heavy(model.predict_proba, x)
    else:
        return_probs, x, probs = await state.run_heavy(_predict_windows, body, model, state)
    del body
    _check_finite_output(probs, "windows")
    pred = probs.argmax(axis=1)
    conf = probs[np.arange(len(pred)), pred].tolist()
    classes = model.spec.classes
    out = []
    for i, p in enumerate(pred.tolist()):
        item: dict[str, Any] = {"activity": classes[p], "class_id": p, "confidence": conf[i]}
        if return_probs:
            item["probs"] = probs[i]
        out.append(item)
    _record(state, "/v1/predict", model, x, pred)
    return json_response({"model": {"name": model.name, "version": model.version}, "classes": classes,
                          "predictions": out})


@router.post("/v1/predict/recording", response_model=schemas.RecordingResponse, responses=_ERRORS,
             openapi_extra=body_ref("RecordingRequest"))
async def predict_recording(request: Request) -> Response:
    """Timeline for a continuous recording at any rate: resample, window, predict, smooth, merge."""
    state = state_of(request)
    model = model_of(state)
    body = await _body(request, state)
    _, tl = await state.run_heavy(_predict_recording, body, model, state)
    del body
    if not len(tl.windows):  # resampling rounding can land one sample short
        raise PayloadError(422, "samples: the recording is shorter than one window after resampling")
    _check_finite_output(tl.probs, "windows")
    _record(state, "/v1/predict/recording", model, tl.windows, tl.raw_pred)
    return json_response({"model": {"name": model.name, "version": model.version},
                          "rate_hz": model.spec.rate_hz, "n_windows": len(tl.windows),
                          "segments": [s.as_dict() for s in tl.segments]})
