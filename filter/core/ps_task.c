#include "ps_task.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct ps_task {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void (*fn)(void *arg); /* the job waiting to run or running; NULL when idle */
    void *arg;
    int quit;
    atomic_int busy; /* fn != NULL, readable without the lock: asked once per event */
};

static void *task_main(void *opaque)
{
    struct ps_task *t = opaque;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (!t->fn && !t->quit) {
            pthread_cond_wait(&t->cv, &t->mu);
        }
        if (!t->fn) {
            break; /* quit with nothing left to run */
        }
        void (*fn)(void *) = t->fn;
        void *arg = t->arg;
        pthread_mutex_unlock(&t->mu);
        fn(arg);
        pthread_mutex_lock(&t->mu);
        t->fn = NULL;
        atomic_store(&t->busy, 0);
        pthread_cond_broadcast(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

ps_err_t ps_task_new(struct ps_task **task_p, struct ps_error *err)
{
    struct ps_task *t = calloc(1, sizeof(*t));
    if (!t) {
        return ps_error_set(err, PS_ERR_NOMEM, "task: out of memory");
    }
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    if (pthread_create(&t->thread, NULL, task_main, t) != 0) {
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        free(t);
        return ps_error_set(err, PS_ERR_NOMEM, "task: the thread could not be created");
    }
    *task_p = t;
    return PS_OK;
}

void ps_task_destroy(struct ps_task *t)
{
    if (!t) {
        return;
    }
    ps_task_wait(t);
    pthread_mutex_lock(&t->mu);
    t->quit = 1;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

ps_err_t ps_task_start(struct ps_task *t, void (*fn)(void *arg), void *arg,
                       struct ps_error *err)
{
    if (!t || !fn) {
        return ps_error_set(err, PS_ERR_INVALID, "task: missing argument");
    }
    pthread_mutex_lock(&t->mu);
    if (t->fn) {
        pthread_mutex_unlock(&t->mu);
        return ps_error_set(err, PS_ERR_INVALID, "task: a job is already running");
    }
    t->fn = fn;
    t->arg = arg;
    atomic_store(&t->busy, 1);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return PS_OK;
}

int ps_task_busy(struct ps_task *t)
{
    /* A hint: 0 may be read a moment before the job's effects are visible;
     * ps_task_wait is what makes them so. */
    return t ? atomic_load(&t->busy) : 0;
}

void ps_task_wait(struct ps_task *t)
{
    if (!t) {
        return;
    }
    pthread_mutex_lock(&t->mu);
    while (t->fn) {
        pthread_cond_wait(&t->cv, &t->mu);
    }
    pthread_mutex_unlock(&t->mu);
}
