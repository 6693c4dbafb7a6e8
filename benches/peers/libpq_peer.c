/*
 * libpq's asynchronous API doing the same work as pgdblink's benchmark scenarios, so both can be
 * measured side by side on the same server. Built by benches/compare.rs at run time (cc + libpq-dev);
 * never part of pgdblink's own build.
 *
 *   libpq_peer rt      CONNINFO SECONDS           SELECT 1 round trips on one connection
 *   libpq_peer rows    CONNINFO N                 one query of N rows x 2 text columns, every value visited
 *   libpq_peer fanout  CONNINFO CONNS SECONDS     SELECT 1 on CONNS connections from one thread (poll)
 *   libpq_peer connect CONNINFO SECONDS           connect + first query + disconnect, repeatedly
 *   libpq_peer pipeline CONNINFO SECONDS          pipeline mode, SELECT $1 1,000 deep, a sync each batch
 *   libpq_peer copyin  CONNINFO N                 COPY FROM STDIN of N rows (int8, text), PQputCopyData
 *   libpq_peer copyout CONNINFO N                 COPY TO STDOUT of N rows (int8, text), PQgetCopyData
 *   libpq_peer connpoll CONNINFO N                N connections at once: PQconnectStart + PQconnectPoll
 *                                                 driven by poll(), until all are open (then closed)
 *   libpq_peer conndb  CONNINFO N                 N connections one after another with PQconnectdb
 *                                                 (what dblink does), all kept open until the end
 *
 * Prints one line: "<operations> <seconds> <client cpu seconds>".
 *
 * For instruction counts (run under valgrind --tool=callgrind --toggle-collect=cg_loop_*), a fixed
 * number of queries and no clock in the loop; prints "<queries>":
 *   libpq_peer cg-rt       CONNINFO N             N SELECT 1 round trips
 *   libpq_peer cg-fanout   CONNINFO CONNS ROUNDS  ROUNDS rounds of SELECT 1 on CONNS connections
 *   libpq_peer cg-pipeline CONNINFO BATCHES       BATCHES pipelines of 1,000 SELECT $1
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

static double now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(PGconn *conn, const char *what)
{
    fprintf(stderr, "%s: %s", what, conn ? PQerrorMessage(conn) : "out of memory\n");
    exit(1);
}

static PGconn *connect_or_die(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK)
        die(conn, "connect");
    return conn;
}

/* Waits until the connection's result is complete, with the async API: poll, consume, isBusy. */
static void wait_ready(PGconn *conn)
{
    struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
    while (PQisBusy(conn)) {
        poll(&p, 1, -1);
        if (!PQconsumeInput(conn))
            die(conn, "consume");
    }
}

/* Takes every result of the query in flight, visiting every value; returns the number of rows. */
static long drain(PGconn *conn)
{
    long rows = 0;
    PGresult *res;
    for (;;) {
        wait_ready(conn);
        res = PQgetResult(conn);
        if (res == NULL)
            break;
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            int n = PQntuples(res), cols = PQnfields(res);
            volatile long sum = 0;
            for (int i = 0; i < n; i++)
                for (int c = 0; c < cols; c++)
                    sum += PQgetlength(res, i, c) + (unsigned char) PQgetvalue(res, i, c)[0];
            rows += n;
        } else if (PQresultStatus(res) != PGRES_COMMAND_OK)
            die(conn, "query");
        PQclear(res);
    }
    return rows;
}

/* The COPY's final result: its row count; the connection is closed. */
static long finish_copy(PGconn *conn)
{
    PGresult *res = PQgetResult(conn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        die(conn, "copy result");
    long rows = atol(PQcmdTuples(res));
    PQclear(res);
    PQfinish(conn);
    return rows;
}

/* One round of the fan-out scenario: SELECT 1 to all, then every result as it completes. */
static void fanout_round(PGconn **conns, struct pollfd *fds, int nconn)
{
    for (int i = 0; i < nconn; i++) {
        if (!PQsendQuery(conns[i], "SELECT 1"))
            die(conns[i], "send");
        fds[i].fd = PQsocket(conns[i]);
    }
    int left = nconn;
    while (left > 0) {
        poll(fds, nconn, -1);
        for (int i = 0; i < nconn; i++) {
            if (!(fds[i].revents & POLLIN) || fds[i].fd < 0)
                continue;
            PGconn *conn = conns[i];
            if (!PQconsumeInput(conn))
                die(conn, "consume");
            PGresult *res;
            while (!PQisBusy(conn) && (res = PQgetResult(conn)) != NULL) {
                if (PQresultStatus(res) != PGRES_TUPLES_OK)
                    die(conn, "query");
                (void) PQgetvalue(res, 0, 0);
                PQclear(res);
            }
            if (!PQisBusy(conn)) {
                fds[i].fd = -1; /* done this round: poll ignores negative fds */
                left--;
            }
        }
    }
}

/* One pipeline of 1,000 SELECT $1 and its sync, every result taken. */
static void pipeline_batch(PGconn *conn, char values[1000][12])
{
    for (int i = 0; i < 1000; i++) {
        const char *param = values[i];
        if (!PQsendQueryParams(conn, "SELECT $1", 1, NULL, &param, NULL, NULL, 0))
            die(conn, "send");
    }
    if (!PQpipelineSync(conn))
        die(conn, "sync");
    for (int i = 0; i < 1000; i++) {
        PGresult *res = PQgetResult(conn);
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            die(conn, "query");
        (void) PQgetvalue(res, 0, 0);
        PQclear(res);
        if (PQgetResult(conn) != NULL)
            die(conn, "end of query");
    }
    PGresult *res = PQgetResult(conn);
    if (PQresultStatus(res) != PGRES_PIPELINE_SYNC)
        die(conn, "sync result");
    PQclear(res);
}

/* The loops callgrind counts (--toggle-collect=cg_loop_*). */
__attribute__((noinline)) static void cg_loop_rt(PGconn *conn, long n)
{
    for (long i = 0; i < n; i++) {
        if (!PQsendQuery(conn, "SELECT 1"))
            die(conn, "send");
        drain(conn);
    }
}

__attribute__((noinline)) static void cg_loop_fanout(PGconn **conns, struct pollfd *fds, int nconn,
                                                     long rounds)
{
    for (long r = 0; r < rounds; r++)
        fanout_round(conns, fds, nconn);
}

__attribute__((noinline)) static void cg_loop_pipeline(PGconn *conn, char values[1000][12],
                                                       long batches)
{
    for (long b = 0; b < batches; b++)
        pipeline_batch(conn, values);
}

/* Connections opened at once with PQconnectStart/PQconnectPoll, each socket waited for as
 * PQconnectPoll asks (POLLIN or POLLOUT), until every one is open. */
static void connect_all_async(const char *conninfo, PGconn **conns, int n)
{
    struct pollfd *fds = calloc(n, sizeof *fds);
    int left = n;
    for (int i = 0; i < n; i++) {
        conns[i] = PQconnectStart(conninfo);
        if (conns[i] == NULL || PQstatus(conns[i]) == CONNECTION_BAD)
            die(conns[i], "connect start");
        fds[i].fd = PQsocket(conns[i]);
        fds[i].events = POLLOUT; /* as libpq's own connectDBComplete starts: writing */
    }
    while (left > 0) {
        poll(fds, n, -1);
        for (int i = 0; i < n; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLOUT | POLLERR | POLLHUP)))
                continue;
            switch (PQconnectPoll(conns[i])) {
            case PGRES_POLLING_READING:
                fds[i].fd = PQsocket(conns[i]);
                fds[i].events = POLLIN;
                break;
            case PGRES_POLLING_WRITING:
                fds[i].fd = PQsocket(conns[i]);
                fds[i].events = POLLOUT;
                break;
            case PGRES_POLLING_OK:
                fds[i].fd = -1;
                left--;
                break;
            default:
                die(conns[i], "connect poll");
            }
        }
    }
    free(fds);
}

static PGconn **connect_many(const char *conninfo, int n, int async)
{
    PGconn **conns = calloc(n, sizeof *conns);
    if (async)
        connect_all_async(conninfo, conns, n);
    else
        for (int i = 0; i < n; i++)
            conns[i] = connect_or_die(conninfo);
    return conns;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: libpq_peer rt|rows|fanout|connect CONNINFO ARGS...\n");
        return 2;
    }
    const char *mode = argv[1], *conninfo = argv[2];
    long ops = 0;
    double t0, c0;

    if (strcmp(mode, "rt") == 0) {
        double seconds = atof(argv[3]);
        PGconn *conn = connect_or_die(conninfo);
        t0 = now(CLOCK_MONOTONIC);
        c0 = now(CLOCK_THREAD_CPUTIME_ID);
        while (now(CLOCK_MONOTONIC) - t0 < seconds) {
            for (int i = 0; i < 100; i++) {
                if (!PQsendQuery(conn, "SELECT 1"))
                    die(conn, "send");
                drain(conn);
            }
            ops += 100;
        }
        PQfinish(conn);
    } else if (strcmp(mode, "rows") == 0) {
        long n = atol(argv[3]);
        char sql[128];
        PGconn *conn = connect_or_die(conninfo);
        snprintf(sql, sizeof sql, "SELECT g, 'row ' || g FROM generate_series(1, %ld) AS g", n);
        t0 = now(CLOCK_MONOTONIC);
        c0 = now(CLOCK_THREAD_CPUTIME_ID);
        if (!PQsendQuery(conn, sql))
            die(conn, "send");
        ops = drain(conn);
        PQfinish(conn);
    } else if (strcmp(mode, "fanout") == 0 && argc >= 5) {
        int nconn = atoi(argv[3]);
        double seconds = atof(argv[4]);
        PGconn **conns = calloc(nconn, sizeof *conns);
        struct pollfd *fds = calloc(nconn, sizeof *fds);
        for (int i = 0; i < nconn; i++) {
            conns[i] = connect_or_die(conninfo);
            fds[i].fd = PQsocket(conns[i]);
            fds[i].events = POLLIN;
        }
        t0 = now(CLOCK_MONOTONIC);
        c0 = now(CLOCK_THREAD_CPUTIME_ID);
        /* In rounds, as pgdblink's scenario: SELECT 1 to all, then every result as it completes. */
        while (now(CLOCK_MONOTONIC) - t0 < seconds) {
            fanout_round(conns, fds, nconn);
            ops += nconn;
        }
        for (int i = 0; i < nconn; i++) {
            drain(conns[i]);
            PQfinish(conns[i]);
        }
    } else if (strcmp(mode, "connect") == 0) {
        double seconds = atof(argv[3]);
        t0 = now(CLOCK_MONOTONIC);
        c0 = now(CLOCK_THREAD_CPUTIME_ID);
        while (now(CLOCK_MONOTONIC) - t0 < seconds) {
            PGconn *conn = connect_or_die(conninfo);
            PQfinish(conn);
            ops++;
        }
    } else if (strcmp(mode, "pipeline") == 0) {
        double seconds = atof(argv[3]);
        PGconn *conn = connect_or_die(conninfo);
        char values[1000][12];
        for (int i = 0; i < 1000; i++)
            snprintf(values[i], sizeof values[i], "%d", i);
        if (!PQenterPipelineMode(conn))
            die(conn, "enter pipeline");
        t0 = now(CLOCK_MONOTONIC);
        c0 = now(CLOCK_THREAD_CPUTIME_ID);
        while (now(CLOCK_MONOTONIC) - t0 < seconds) {
            pipeline_batch(conn, values);
            ops += 1000;
        }
        PQexitPipelineMode(conn);
        PQfinish(conn);
    } else if (strcmp(mode, "copyin") == 0) {
        long n = atol(argv[3]);
        PGconn *conn = connect_or_die(conninfo);
        PQclear(PQexec(conn, "CREATE TEMP TABLE bench_copy (a int8, b text)"));
        static char buf[64 * 1024 + 64];
        t0 = now(CLOCK_MONOTONIC);
        c0 = now(CLOCK_THREAD_CPUTIME_ID);
        PGresult *res = PQexec(conn, "COPY bench_copy FROM STDIN");
        if (PQresultStatus(res) != PGRES_COPY_IN)
            die(conn, "copy in");
        PQclear(res);
        long i = 0;
        while (i < n) {
            size_t len = 0;
            while (len < 64 * 1024 && i < n) {
                i++;
                len += snprintf(buf + len, sizeof buf - len, "%ld\trow %ld\n", i, i);
            }
            if (PQputCopyData(conn, buf, (int) len) != 1)
                die(conn, "put copy data");
        }
        if (PQputCopyEnd(conn, NULL) != 1)
            die(conn, "put copy end");
        ops = finish_copy(conn);
    } else if (strcmp(mode, "copyout") == 0) {
        long n = atol(argv[3]);
        char sql[160];
        PGconn *conn = connect_or_die(conninfo);
        snprintf(sql, sizeof sql,
                 "COPY (SELECT g::int8, 'row ' || g FROM generate_series(1, %ld) AS g) TO STDOUT", n);
        t0 = now(CLOCK_MONOTONIC);
        c0 = now(CLOCK_THREAD_CPUTIME_ID);
        PGresult *res = PQexec(conn, sql);
        if (PQresultStatus(res) != PGRES_COPY_OUT)
            die(conn, "copy out");
        PQclear(res);
        char *row;
        long bytes = 0;
        int len;
        while ((len = PQgetCopyData(conn, &row, 0)) > 0) {
            bytes += len;
            PQfreemem(row);
        }
        ops = finish_copy(conn);
        (void) bytes;
    } else if (strcmp(mode, "connpoll") == 0 || strcmp(mode, "conndb") == 0) {
        int n = atoi(argv[3]);
        t0 = now(CLOCK_MONOTONIC);
        c0 = now(CLOCK_THREAD_CPUTIME_ID);
        PGconn **conns = connect_many(conninfo, n, strcmp(mode, "connpoll") == 0);
        double t1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_THREAD_CPUTIME_ID);
        for (int i = 0; i < n; i++)
            PQfinish(conns[i]);
        printf("%d %.6f %.6f\n", n, t1 - t0, c1 - c0);
        return 0;
    } else if (strcmp(mode, "cg-rt") == 0) {
        long n = atol(argv[3]);
        PGconn *conn = connect_or_die(conninfo);
        cg_loop_rt(conn, 100);
        cg_loop_rt(conn, n);
        PQfinish(conn);
        printf("%ld\n", n);
        return 0;
    } else if (strcmp(mode, "cg-fanout") == 0 && argc >= 5) {
        int nconn = atoi(argv[3]);
        long rounds = atol(argv[4]);
        PGconn **conns = connect_many(conninfo, nconn, 0);
        struct pollfd *fds = calloc(nconn, sizeof *fds);
        for (int i = 0; i < nconn; i++)
            fds[i].events = POLLIN;
        fanout_round(conns, fds, nconn);
        cg_loop_fanout(conns, fds, nconn, rounds);
        for (int i = 0; i < nconn; i++)
            PQfinish(conns[i]);
        printf("%ld\n", rounds * nconn);
        return 0;
    } else if (strcmp(mode, "cg-pipeline") == 0) {
        long batches = atol(argv[3]);
        PGconn *conn = connect_or_die(conninfo);
        char values[1000][12];
        for (int i = 0; i < 1000; i++)
            snprintf(values[i], sizeof values[i], "%d", i);
        if (!PQenterPipelineMode(conn))
            die(conn, "enter pipeline");
        pipeline_batch(conn, values);
        cg_loop_pipeline(conn, values, batches);
        PQexitPipelineMode(conn);
        PQfinish(conn);
        printf("%ld\n", batches * 1000);
        return 0;
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("%ld %.6f %.6f\n", ops, now(CLOCK_MONOTONIC) - t0, now(CLOCK_THREAD_CPUTIME_ID) - c0);
    return 0;
}
