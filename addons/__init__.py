"""mitmproxy addons of the student activity monitor: thin adapters over ``monitor``.

Load them with ``mitmdump -s addons/student_monitor.py --set monitor_config=DIR`` or, with
production options, ``monitor proxy --config DIR``.
"""
