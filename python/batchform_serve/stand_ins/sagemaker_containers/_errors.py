class ClientError(Exception):
    """An error the client caused: answered with a 4xx."""

    status_code = 400


class UnsupportedFormatError(ClientError):
    status_code = 415

    def __init__(self, content_type, **kwargs):
        self.content_type = content_type
        super().__init__(f"Content type {content_type} is not supported by this framework.")


class ImportModuleError(ClientError):
    pass


class ExecuteUserScriptError(ClientError):
    pass
