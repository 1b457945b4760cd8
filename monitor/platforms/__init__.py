"""Platforms: what a host *is*. The catalogue (data, not policy), the host → platform
classifier, and the activity a request performs on a platform (view, post, upload, …).

Imports only ``monitor.model`` and ``monitor.yamlfile``; knows nothing of people or policy.
"""
