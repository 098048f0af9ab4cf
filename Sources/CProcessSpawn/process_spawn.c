#define _GNU_SOURCE
#include "process_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

// PR_SET_PDEATHSIG fires when the *thread* that forked ends, not the process. Swift's thread pools
// retire idle threads, so every fork happens on one thread that lives as long as the process.

struct spawn_request {
    const char *path;
    char *const *argv;
    char *const *envp;
    int stdin_fd, output_fd, die_with_parent;
    pid_t pid;
    int result;
    int done;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static struct spawn_request *pending;
static pthread_once_t started = PTHREAD_ONCE_INIT;
static pid_t parent_pid;

static void child(struct spawn_request *request, int report_fd) {
    // Only async-signal-safe calls from here on: this is a fork of a threaded process.
    int error = 0;
    if (request->die_with_parent) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) error = errno;
        // The parent may have died before the prctl took effect.
        if (!error && getppid() != parent_pid) _exit(127);
    }
    if (!error && setpgid(0, 0) != 0) error = errno;
    for (int signal = 1; !error && signal < NSIG; signal++) {
        if (signal == SIGKILL || signal == SIGSTOP) continue;
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = SIG_DFL;
        sigaction(signal, &action, NULL);  // fails harmlessly for the signals libc reserves
    }
    sigset_t none;
    sigemptyset(&none);
    if (!error && sigprocmask(SIG_SETMASK, &none, NULL) != 0) error = errno;
    if (!error && dup2(request->stdin_fd, 0) < 0) error = errno;
    if (!error && dup2(request->output_fd, 1) < 0) error = errno;
    if (!error && dup2(request->output_fd, 2) < 0) error = errno;
    if (!error) {
        execve(request->path, request->argv, request->envp);
        error = errno;
    }
    while (write(report_fd, &error, sizeof error) < 0 && errno == EINTR) {}
    _exit(127);
}

static void run(struct spawn_request *request) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        request->result = errno;
        return;
    }
    pid_t pid = fork();
    if (pid == 0) child(request, report[1]);
    close(report[1]);
    if (pid < 0) {
        request->result = errno;
        close(report[0]);
        return;
    }
    // The pipe closes on a successful exec; otherwise it carries the errno.
    int error = 0;
    ssize_t count;
    do { count = read(report[0], &error, sizeof error); } while (count < 0 && errno == EINTR);
    close(report[0]);
    request->pid = pid;
    request->result = count == sizeof error ? error : 0;
}

static void *spawner(void *unused) {
    (void)unused;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (pending == NULL || pending->done) pthread_cond_wait(&changed, &lock);
        struct spawn_request *request = pending;
        pthread_mutex_unlock(&lock);
        run(request);
        pthread_mutex_lock(&lock);
        request->done = 1;
        pthread_cond_broadcast(&changed);
    }
    return NULL;
}

static void start_spawner(void) {
    parent_pid = getpid();
    pthread_t thread;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_create(&thread, &attributes, spawner, NULL);
    pthread_attr_destroy(&attributes);
}

int batchform_spawn(const char *path, char *const argv[], char *const envp[], int stdin_fd, int output_fd,
                    int die_with_parent, pid_t *pid) {
    pthread_once(&started, start_spawner);
    struct spawn_request request = {path, argv, envp, stdin_fd, output_fd, die_with_parent, 0, 0, 0};
    pthread_mutex_lock(&lock);
    while (pending != NULL && !pending->done) pthread_cond_wait(&changed, &lock);
    pending = &request;
    pthread_cond_broadcast(&changed);
    while (!request.done) pthread_cond_wait(&changed, &lock);
    if (pending == &request) pending = NULL;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    if (request.result != 0) {
        if (request.pid > 0) {
            int status;
            while (waitpid(request.pid, &status, 0) < 0 && errno == EINTR) {}
        }
        return request.result;
    }
    *pid = request.pid;
    return 0;
}

int batchform_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
