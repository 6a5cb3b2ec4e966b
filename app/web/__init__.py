"""HTTP front doors over the composition root (the intake: intake_http.py). No Qt here."""
