"""OpenVINO Model Server deployment: the ``config.json`` the chart mounts and the pinned image.

OVMS reads published versions straight from the shared models volume (``<models_dir>/<name>/<N>``);
nothing is copied. Needs only the standard library; openvino only to check a config against an IR.
"""
