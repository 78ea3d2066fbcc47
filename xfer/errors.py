"""The kit's one error type: a message that names the file, the line and the fix."""


class XferError(Exception):
    """An error the user can act on. The CLI prints it without a traceback and exits non-zero."""

    def __init__(self, message, path=None, line=None, fix=None):
        self.path, self.line, self.fix = path, line, fix
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        text = where + message
        if fix:
            text += f"\n  fix: {fix}"
        super().__init__(text)
