"""One error hierarchy for the whole server.

Errors are raised deep in the pipeline and mapped once, at the LSP edge
(`lsp/errors.py`), to JSON-RPC errors or `window/showMessage`. "Nothing to
suggest" is never an error: it is an empty result.
"""


class CodeLlamaLsError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidRequestError(CodeLlamaLsError):
    """The client sent something malformed: mapped to JSON-RPC InvalidParams."""


class InvalidPositionError(InvalidRequestError):
    """A position or range lies outside the document or splits a character."""


class UnknownDocumentError(CodeLlamaLsError):
    """A request named a document that is not open (the result is empty, not an error)."""


class ConfigError(CodeLlamaLsError):
    """A setting has a bad value; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"setting {key!r}: {problem}")
        self.key = key
        self.problem = problem


class ModelLoadError(CodeLlamaLsError):
    """The model could not be found, converted or loaded; the message says what to do."""


class GenerationError(CodeLlamaLsError):
    """The model failed while generating (out of memory, for example)."""


class EngineUnreachableError(GenerationError):
    """A remote inference server did not answer (refused, timed out, connection lost)."""


class RequestCancelled(CodeLlamaLsError):
    """The request was cancelled before its model work began."""


class PromptError(CodeLlamaLsError):
    """A prompt cannot be built for this model (for example, no FIM tokens where required)."""
