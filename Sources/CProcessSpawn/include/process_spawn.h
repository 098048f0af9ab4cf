#ifndef BATCHFORM_PROCESS_SPAWN_H
#define BATCHFORM_PROCESS_SPAWN_H

#include <sys/types.h>

/// Starts `path` with `argv` and `envp` in a new process group, with stdin from `stdin_fd`, stdout
/// and stderr to `output_fd`, default signal dispositions and an empty signal mask. With
/// `die_with_parent`, the child gets SIGKILL when this process ends, however it ends
/// (PR_SET_PDEATHSIG). Returns 0 and sets `*pid`, or the errno of what failed (exec included).
int batchform_spawn(const char *path, char *const argv[], char *const envp[], int stdin_fd, int output_fd,
                    int die_with_parent, pid_t *pid);

/// pipe2(fds, O_CLOEXEC): both ends close on exec, so no other child inherits them.
int batchform_pipe_cloexec(int fds[2]);

#endif
