"""`make bench`: the service and the tutorial recipe under wrk on loopback (see bench/README.md).

Modules: `payloads` (request bodies from the artifacts), `wrk` (Lua scripts, running and parsing wrk),
`processes` (starting servers, readiness, /proc readings), `scenarios` (one measured route),
`runner` (one server's part of a run), `report` (ratios, targets, JSON and Markdown),
`tutorial_app` (the baseline recipe app), `__main__` (the command line).
"""
