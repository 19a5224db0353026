"""Clients of the served model: our HTTP services, and OpenVINO Model Server over gRPC
(KServe v2 or TF-Serving). Every path tokenizes and post-processes with ``qatflow.core.qa``,
so the same model gives the same answers whichever way it is asked.
"""
