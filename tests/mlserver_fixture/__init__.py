"""MLServer, Seldon's KServe v2 server, serving published IRs: the second, independent server
the gRPC client is tested against, beside the OVMS stand-in (``tests/ovms_fixture_server.py``)."""
