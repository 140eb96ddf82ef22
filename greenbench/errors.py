"""The base of greenbench's own errors: the message is one clear line for the user.

The CLI turns any ``GreenbenchError`` into that line and exit code 2, never a traceback.
"""


class GreenbenchError(Exception):
    """Bad input or a state the user can fix; ``str(e)`` is one line saying what and how."""
