"""Serving the exported ONNX model: HTTP API (``app``), batch prediction (``predict``).

Public API (import from the submodules; this package stays import-light):

* ``har.serving.model``: ``load_model(uri, tracking_uri, intra_op_threads)`` → ``LoadedModel``
  (``.predict_proba(windows)``, ``.spec``: ``ModelSpec``), ``ModelHolder`` (hot reload),
  ``resolve_tracking_uri``, ``ModelLoadError``.
* ``har.serving.timeline``: ``predict_timeline``, ``smooth_predictions``, ``merge_segments``,
  ``label_agreement``, ``Segment``.
* ``har.serving.inference_log``: ``read_inference_log(dir)``, ``make_record``, ``InferenceLogWriter``.
* ``har.serving.app``: ``create_app(serve_params, ...)``, ``run_server``, ``write_openapi``.
* ``har.serving.predict``: ``predict_files`` (``har predict``).
"""
