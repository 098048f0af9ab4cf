"""`worker.Response`: what handlers return to set the body, the status and the content type.
The real one is a Flask response; this one carries the same constructor and attributes that the
built-in server reads (`get_data()`, `mimetype`, `status_code`), without needing Flask."""


class Response:
    default_mimetype = "application/json"

    def __init__(self, response=None, status=200, headers=None, mimetype=None, content_type=None,
                 direct_passthrough=False, accept=None):
        if isinstance(response, (list, tuple)):
            response = b"".join(part.encode("utf-8") if isinstance(part, str) else bytes(part) for part in response)
        if isinstance(response, str):
            response = response.encode("utf-8")
        self.response = response if response is not None else b""
        self.status_code = self._code(status)
        self.headers = dict(headers or {})
        self.mimetype = (mimetype or (content_type or "").split(";", 1)[0] or accept or self.default_mimetype)

    @staticmethod
    def _code(status):
        """An int or "404 NOT FOUND". Published scripts pass the content type where the status goes
        (`Response(body, accept, mimetype=accept)`); such a status means the default, 200."""
        if isinstance(status, int):
            return status
        first = str(status).split(None, 1)[0] if status else ""
        return int(first) if first.isdigit() and 100 <= int(first) < 600 else 200

    def get_data(self, as_text=False):
        return self.response.decode("utf-8") if as_text else bytes(self.response)

    @property
    def data(self):
        return self.get_data()

    @property
    def status(self):
        return str(self.status_code)
