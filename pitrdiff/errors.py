"""The one exception tree of pitrdiff.

Every error a user can cause is a :class:`PitrdiffError` carrying the exit code
the command line ends with. The CLI catches this base class in exactly one
place and prints ``str(error)`` as a one-line message (``--debug`` re-raises).

Exit codes
----------
- ``0`` (:data:`EXIT_OK`): done; no differences.
- ``1`` (:data:`EXIT_DIFFERENCES`): differences found (``diff``) or conflicts
  left (``apply``). Not an error: results decide it, not an exception.
- ``2`` (:data:`EXIT_BAD_INPUT`): bad input or a refused operation.
- ``3`` (:data:`EXIT_FAILURE`): an AWS or I/O failure.
- ``130`` (:data:`EXIT_INTERRUPTED`): interrupted (Ctrl-C, SIGINT).
- ``143`` (:data:`EXIT_TERMINATED`): terminated (SIGTERM).

The tree::

    PitrdiffError                    exit 2 unless a subclass says otherwise
    ├── InputError                   exit 2: bad input or a refused operation
    │   ├── CodecError               a value that is not valid DynamoDB data
    │   ├── ExportError              a path that is not a usable export dataset
    │   │   └── IncompleteExportError
    │   ├── DiffError                a path that is not a usable diff dataset
    │   ├── SchemaMismatchError      key schemas differ (exports, plan vs table)
    │   ├── PlanError                a plan that is truncated, edited or unusable
    │   ├── TableNotFoundError       the named table does not exist
    │   ├── PitrError                PITR off, a restore time outside the window…
    │   └── RefusedError             an operation pitrdiff will not do as asked
    ├── AwsError                     exit 3: the service or the connection failed
    │   ├── EndpointError            the endpoint cannot be reached
    │   └── CredentialsError         credentials missing or refused
    ├── StorageError                 exit 3: a local file could not be read or written
    └── Interrupted                  exit 130 (also raised on KeyboardInterrupt)

    KeyboardInterrupt                (Python's own: Ctrl-C)
    └── Terminated                   exit 143: SIGTERM, raised by the CLI's handler

:class:`Terminated` is a ``KeyboardInterrupt``, not a :class:`PitrdiffError`:
SIGTERM then takes the path Ctrl-C takes (every ``finally`` runs, every
``except KeyboardInterrupt`` that stops workers or keeps a resumable state
applies), and no ``except Exception`` can swallow it.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_DIFFERENCES = 1
EXIT_BAD_INPUT = 2
EXIT_FAILURE = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class PitrdiffError(Exception):
    """Base of every error pitrdiff raises on purpose.

    Parameters
    ----------
    message
        One line that says what went wrong and, where it helps, what to do.
    """

    exit_code: int = EXIT_BAD_INPUT

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(PitrdiffError):
    """Bad input or a refused operation (exit 2)."""

    exit_code = EXIT_BAD_INPUT


class CodecError(InputError):
    """A value that is not valid DynamoDB data (bad number, empty set, unknown tag)."""


class ExportError(InputError):
    """A path that is not a usable export dataset (missing, corrupt, mismatched)."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class IncompleteExportError(ExportError):
    """An export whose manifest does not say ``complete``."""


class DiffError(InputError):
    """A path that is not a usable diff dataset."""


class SchemaMismatchError(InputError):
    """Two key schemas that must agree do not."""


class PlanError(InputError):
    """A plan that is truncated, edited, or cannot be applied as asked."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class TableNotFoundError(InputError):
    """The named DynamoDB table does not exist."""

    def __init__(self, table: str, message: str | None = None) -> None:
        super().__init__(message or f"table {table!r} does not exist")
        self.table = table


class PitrError(InputError):
    """Point-in-time recovery is off, or a restore time is not restorable."""


class RefusedError(InputError):
    """An operation pitrdiff refuses to do as asked (would overwrite, clobber, delete)."""


class AwsError(PitrdiffError):
    """The AWS service (or a DynamoDB-protocol server) failed (exit 3)."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class EndpointError(AwsError):
    """The endpoint cannot be reached."""


class CredentialsError(AwsError):
    """No credentials were found, or the service refused them."""


class StorageError(PitrdiffError):
    """A local file or directory could not be read or written (exit 3)."""

    exit_code = EXIT_FAILURE


class Interrupted(PitrdiffError):
    """The operation was interrupted (exit 130); what was done is kept."""

    exit_code = EXIT_INTERRUPTED


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (exit 143); raised by the command line's signal handler.

    A ``KeyboardInterrupt`` so that code written for Ctrl-C (cleanup in
    ``finally``, workers stopped, resumable state kept) handles SIGTERM alike.
    """

    exit_code = EXIT_TERMINATED
