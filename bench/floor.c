/* The floor of a neon-watchdog pass: the same work done by the simplest C program, to say how
 * far the watchdog is from what the work itself costs.
 *
 *   floor [--scan] [--spawn N] [--connect PORT]... [--targets N] [--threads T] --state FILE
 *
 * --scan        one /proc scan: each process's stat and cmdline read, its exe readlink'ed
 *               (what a pass with process checks reads)
 * --spawn N     N posix_spawns of /bin/true, each waited for (command checks)
 * --connect P   one loopback TCP connect to port P per given --connect (tcp_port checks)
 * --threads T   spawns and connects run on T threads (neon's waiting checks run side by
 *               side too)
 * --targets N   the state file written holds N targets' worth of JSON (~430 bytes each)
 * --state FILE  written as neon writes its state: temp file, write, fsync, rename, fsync dir
 *
 * Built by bench/vs-monit.sh with `gcc -O2 -pthread`.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int n_spawn, n_connect, ports[100000];
static atomic_int next_job;

static void read_file(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, buf, cap - 1);
    if (n >= 0) buf[n] = 0;
    close(fd);
}

static void scan(void) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    char path[64], buf[4096], link[4096];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        read_file(path, buf, sizeof buf);
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        read_file(path, buf, sizeof buf);
        snprintf(path, sizeof path, "/proc/%s/exe", e->d_name);
        (void)readlink(path, link, sizeof link);
    }
    if (d) closedir(d);
}

static void *worker(void *arg) {
    (void)arg;
    for (;;) {
        int j = atomic_fetch_add(&next_job, 1);
        if (j < n_spawn) {
            pid_t pid;
            char *argv[] = {"/bin/true", NULL};
            posix_spawnattr_t attr;
            posix_spawnattr_init(&attr);
            posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
            posix_spawnattr_setpgroup(&attr, 0);
            if (posix_spawn(&pid, "/bin/true", NULL, &attr, argv, environ) == 0) {
                int st;
                waitpid(pid, &st, 0);
            }
            posix_spawnattr_destroy(&attr);
        } else if (j < n_spawn + n_connect) {
            int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(ports[j - n_spawn])};
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            (void)connect(s, (struct sockaddr *)&a, sizeof a);
            close(s);
        } else {
            return NULL;
        }
    }
}

static void write_state(const char *path, int targets) {
    char tmp[4096], dir[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp-floor", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) { perror(tmp); exit(1); }
    static const char one[] =
        "\"t\":{\"status\":\"healthy\",\"since\":\"2026-12-01T10:00:00.000Z\",\"consecutive_failures\":0,"
        "\"last_reason\":null,\"last_check\":\"2026-12-01T10:00:00.000Z\",\"restarts\":[],\"last_restart\":null,"
        "\"restarts_since_healthy\":0,\"restarts_total\":0,\"down_since\":null,\"last_alert\":null,"
        "\"rate_limited\":false,\"transitions\":[{\"at\":\"2026-12-01T10:00:00.000Z\",\"from\":\"unknown\","
        "\"to\":\"healthy\"}],\"checks_failed_total\":0,\"last_healthy\":\"2026-12-01T10:00:00.000Z\"},";
    (void)write(fd, "{\"version\":1,\"targets\":{", 24);
    for (int i = 0; i < targets; i++) (void)write(fd, one, sizeof one - 1);
    (void)write(fd, "}}\n", 3);
    fsync(fd);
    close(fd);
    rename(tmp, path);
    strncpy(dir, path, sizeof dir - 1);
    dir[sizeof dir - 1] = 0;
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { fsync(dfd); close(dfd); }
}

int main(int argc, char **argv) {
    int do_scan = 0, threads = 32, targets = 0;
    const char *state = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--scan")) do_scan = 1;
        else if (!strcmp(argv[i], "--spawn") && i + 1 < argc) n_spawn = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--connect") && i + 1 < argc && n_connect < 100000) ports[n_connect++] = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--targets") && i + 1 < argc) targets = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--state") && i + 1 < argc) state = argv[++i];
        else { fprintf(stderr, "floor: unknown argument %s\n", argv[i]); return 64; }
    }
    if (do_scan) scan();
    int jobs = n_spawn + n_connect;
    if (threads > jobs) threads = jobs;
    pthread_t t[4096];
    int started = 0;
    for (int i = 0; i < threads && i < 4096; i++)
        if (pthread_create(&t[i], NULL, worker, NULL) == 0) started++;
    if (started == 0) worker(NULL);
    for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
    if (state) write_state(state, targets);
    return 0;
}
