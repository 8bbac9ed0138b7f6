"""The sign-in service's rules, pure: password hashing and policy (``passwords``), lockout and throttling
arithmetic (``lockout``), session secrets and timeouts (``sessions``), and the refusals (``errors``)."""
