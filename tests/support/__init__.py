"""What the tests share, one module per concern (tests import from here, never from
another test module):

- ``database``: a database of a test's own (``scratch_database``), counts read back;
- ``registry``: the test registry (t1, lot1, gw1/gw2) and event messages for it;
- ``mqtt``: a QoS 1 publisher, a recording subscriber, a probe of broker answers;
- ``broker``: brokers that log clients in, accounts and credentials for them;
- ``ingest``: ingest in this loop or as processes, load, and the markers that prove
  ingest got past a point in the stream (negative checks wait for one, not for time);
- ``gateways``: gateway configs, the service in this loop or as a process;
- ``api``: the provisioned test city, tokens, the app (ASGI or uvicorn), an SSE reader;
- ``waiting``: ``wait_until`` / ``wait_until_sync`` / ``wait_rows``, the one copy of each;
- ``history``: the scripted site history both database flavors play;
- ``payloads``: mutations of valid payloads for the fuzz tests;
- ``pgcluster``, ``promql``, ``deploy_tools``: what the deployment tests run and read.
"""
