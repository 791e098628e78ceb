"""The HTTP surface of the jangar process: probes, metrics and the AgentRun submission API.

Mounted on the runtime manager's aiohttp application so one port (8080 in the chart) serves everything.
"""
