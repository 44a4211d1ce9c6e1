"""Domain errors carry a message a person can read and the HTTP status a view answers with."""


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class ConfigMissing(DomainError):
    status_code = 500
