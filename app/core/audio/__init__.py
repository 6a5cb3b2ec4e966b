"""The sound: decoding (PyAV), the Haitsma-Kalker fingerprint and its stored blocks. No Qt, no
SQL; never plays anything."""
