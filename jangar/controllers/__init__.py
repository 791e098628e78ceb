"""The agents controllers: AgentRun (admission, Job scheduling, outcome) and its supporting kinds.

Wire them with :func:`jangar.controllers.setup.install`. See docs/controllers.md.
"""
