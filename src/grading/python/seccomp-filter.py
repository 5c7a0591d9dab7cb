# Builds the seccomp-bpf filter of the Python sandbox and writes it to stdout (py-sandbox.ts hands
# it to `bwrap --seccomp FD`). Run once per grader process with Debian's /usr/bin/python3, which has
# the libseccomp bindings (package python3-seccomp); libseccomp takes care of the architecture checks
# and of the x32 ABI aliases.
#
# Allow by default, deny what a program has no business doing, as nsjail's and Docker's default
# policies do: a deny list keeps CPython and its C modules working (an allow list breaks with every
# libc update) while removing the kernel interfaces that attacks on a box go through.
import errno
import sys

import seccomp

DENIED = [
    # Reaching into another process: the attack on bubblewrap's init (issue 9) went through these.
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    # Kernel attack surface with a long CVE history and no use in an exercise.
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "fanotify_init",
    "name_to_handle_at", "open_by_handle_at", "lookup_dcookie", "move_pages", "migrate_pages",
    # Namespaces and mounts: the box's own must stay as bubblewrap made them.
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "mount_setattr",
    "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
    # Whole-machine state.
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
    "swapon", "swapoff", "acct", "syslog", "iopl", "ioperm", "quotactl", "vhangup",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname", "setdomainname",
    # personality(2) can turn off address-space randomisation for later code.
    "personality",
]

# clone(2) flags that create namespaces; clone3(2) passes its flags in memory, which a filter cannot
# read, so it answers ENOSYS and glibc falls back to clone(2).
NAMESPACE_FLAGS = [
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
    0x00000080,  # CLONE_NEWTIME
]


def build():
    f = seccomp.SyscallFilter(seccomp.ALLOW)
    deny = seccomp.ERRNO(errno.EPERM)
    for name in DENIED:
        try:
            f.add_rule(deny, name)
        except (RuntimeError, ValueError):
            pass  # a syscall this kernel/libseccomp does not know cannot be called either
    # prlimit64 on itself (pid 0) is how glibc's getrlimit/setrlimit work; any other pid is refused.
    f.add_rule(deny, "prlimit64", seccomp.Arg(0, seccomp.NE, 0))
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    for flag in NAMESPACE_FLAGS:
        f.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    # TIOCSTI pushes input into a terminal (bubblewrap's --new-session also prevents it).
    f.add_rule(deny, "ioctl", seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF, 0x5412))
    return f


if __name__ == "__main__":
    build().export_bpf(sys.stdout.buffer)
