"""Errors a user can act on: printed as one paragraph, without a stack trace."""


class UserError(Exception):
    """A problem with input, config or output that the user can fix; the message says how."""
