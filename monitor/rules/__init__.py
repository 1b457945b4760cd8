"""Rules: what to do. The policy file (schema, loader, compiled :class:`Policy`), teacher
overrides, the decision (``decide``/``ruling``) and its explanation (``monitor explain``).

Inside, one direction: overrides and the policy below, the decision above them, the
explanation on top. Imports ``monitor.platforms`` and the shared ``monitor.model`` and
``monitor.yamlfile``; never ``people`` (a decision takes a person, it does not look one up).
"""
