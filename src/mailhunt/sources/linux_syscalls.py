"""Names of the Linux system calls that matter for mail evidence, per audit architecture.

Only calls that start programs or delete, rename, truncate or rewrite files are
named; any other number stays a number (``syscall_<n>``). Numbers come from the
kernel's tables: ``arch/x86/entry/syscalls/syscall_64.tbl`` for x86_64 and the
generic ``include/uapi/asm-generic/unistd.h`` that aarch64 uses (which has no
``open``, ``unlink`` or ``rename``, only their ``*at`` forms).
"""

from __future__ import annotations

from typing import overload

from mailhunt.sources.json_values import int64_from_text

AUDIT_ARCH = {
    "c000003e": "x86_64",
    "c00000b7": "aarch64",
    "40000003": "i386",
    "40000028": "arm",
}

SYSCALLS = {
    "x86_64": {
        2: "open", 59: "execve", 76: "truncate", 77: "ftruncate", 82: "rename", 84: "rmdir", 85: "creat",
        87: "unlink", 257: "openat", 263: "unlinkat", 264: "renameat", 316: "renameat2", 322: "execveat",
        437: "openat2",
    },
    "aarch64": {
        35: "unlinkat", 38: "renameat", 45: "truncate", 46: "ftruncate", 56: "openat", 221: "execve",
        276: "renameat2", 281: "execveat", 437: "openat2",
    },
}

EXEC_CALLS = frozenset({"execve", "execveat"})
DELETE_CALLS = frozenset({"unlink", "unlinkat", "rmdir"})
RENAME_CALLS = frozenset({"rename", "renameat", "renameat2"})
TRUNCATE_CALLS = frozenset({"truncate", "ftruncate"})
OPEN_CALLS = frozenset({"open", "openat", "creat"})

O_TRUNC = 0o1000  # the same value on x86_64 and aarch64
# Which argument holds the open flags: open(path, flags), openat(dirfd, path, flags).
OPEN_FLAGS_ARG = {"open": "a1", "openat": "a2"}


@overload
def arch_name(code: str) -> str: ...
@overload
def arch_name(code: None) -> None: ...
@overload
def arch_name(code: str | None) -> str | None: ...
def arch_name(code: str | None) -> str | None:
    if code is None:
        return None
    return AUDIT_ARCH.get(code.lower(), code)


def syscall_name(arch: str | None, number: str | None) -> str | None:
    """``execve`` for (x86_64, "59"); a name already given (``ausearch -i``) is kept; else ``syscall_<n>``."""
    if number is None:
        return None
    value = int64_from_text(number)
    if value is None:
        return number
    return SYSCALLS.get(arch or "", {}).get(value, f"syscall_{number}")


def opens_with_truncation(name: str, args: dict[str, str]) -> bool:
    """Whether an open/openat/creat call asked the kernel to empty the file (O_TRUNC, or creat)."""
    if name == "creat":
        return True
    value = args.get(OPEN_FLAGS_ARG.get(name, ""))
    if not value:
        return False
    if "O_TRUNC" in value:
        return True
    try:
        return bool(int(value, 16) & O_TRUNC)
    except ValueError:
        return False
