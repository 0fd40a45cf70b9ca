/*
 * ps_task: one job at a time on a thread of its own.
 *
 * The pipeline commits a transaction here while its own thread decodes and
 * derives the next batch (the commit is mostly waiting for the broker). The
 * owner starts a job, may ask whether it is still running, and waits for it
 * before starting another or reading what the job wrote: ps_task_wait is the
 * synchronisation point, after which everything the job did is visible.
 *
 * Not for several owners: one thread calls start, busy and wait.
 */
#ifndef PS_TASK_H
#define PS_TASK_H

#include "ps_error.h"

struct ps_task;

/* Starts the thread, idle. PS_ERR_NOMEM when it cannot be created. */
ps_err_t ps_task_new(struct ps_task **task_p, struct ps_error *err);

/* Waits for a running job, stops and joins the thread. NULL is a no-op. */
void ps_task_destroy(struct ps_task *task);

/* Runs fn(arg) on the task's thread. The task must be idle (never started,
 * or waited for since): a second start while busy is a programming error and
 * returns PS_ERR_INVALID without running anything. */
ps_err_t ps_task_start(struct ps_task *task, void (*fn)(void *arg), void *arg,
                       struct ps_error *err);

/* 1 while a started job has not returned (lock-free: callers ask it per
 * event). Not a synchronisation point: wait before reading the job's results. */
int ps_task_busy(struct ps_task *task);

/* Blocks until the started job (if any) has returned. */
void ps_task_wait(struct ps_task *task);

#endif
