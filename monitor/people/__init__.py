"""People: who is behind a connection. The OneRoster roster (people, schools, classes,
birthdates), the device inventory, DHCP leases, static address maps and the identity resolver
that chains them (address → device → person, or a proxy-auth user).

Imports only ``monitor.model`` and ``monitor.yamlfile``; knows nothing of platforms or policy.
"""
