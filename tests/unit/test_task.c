/*
 * Unit tests for ps_task: a job runs on another thread and its effects are
 * visible after ps_task_wait; busy tells a running job from a finished one;
 * a second start while busy is refused without running; jobs run one after
 * another; destroy waits for a running job.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <cmocka.h>

#include "ps_error.h"
#include "ps_task.h"

struct job {
    atomic_int release; /* the job spins until this is set */
    int runs;
    pthread_t ran_on;
};

static void job_fn(void *arg)
{
    struct job *j = arg;
    while (!atomic_load(&j->release)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    j->runs++;
    j->ran_on = pthread_self();
}

static void other_fn(void *arg)
{
    (*(int *)arg)++;
}

static void test_start_busy_wait(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_task *task = NULL;
    assert_int_equal(ps_task_new(&task, &err), PS_OK);
    assert_false(ps_task_busy(task));
    ps_task_wait(task); /* nothing started: returns */

    struct job j = {0};
    assert_int_equal(ps_task_start(task, job_fn, &j, &err), PS_OK);
    assert_true(ps_task_busy(task));
    int other = 0;
    assert_int_equal(ps_task_start(task, other_fn, &other, &err), PS_ERR_INVALID);
    atomic_store(&j.release, 1);
    ps_task_wait(task);
    assert_false(ps_task_busy(task));
    assert_int_equal(j.runs, 1);
    assert_false(pthread_equal(j.ran_on, pthread_self()));
    assert_int_equal(other, 0); /* the refused job never ran */

    for (int i = 0; i < 1000; i++) {
        assert_int_equal(ps_task_start(task, other_fn, &other, &err), PS_OK);
        ps_task_wait(task);
    }
    assert_int_equal(other, 1000);
    assert_int_equal(ps_task_start(NULL, other_fn, &other, &err), PS_ERR_INVALID);
    assert_int_equal(ps_task_start(task, NULL, &other, &err), PS_ERR_INVALID);
    ps_task_destroy(task);
}

static void *release_later(void *arg)
{
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
    atomic_store(&((struct job *)arg)->release, 1);
    return NULL;
}

static void test_destroy_waits(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_task *task = NULL;
    struct job j = {0};
    pthread_t releaser;
    assert_int_equal(ps_task_new(&task, &err), PS_OK);
    assert_int_equal(ps_task_start(task, job_fn, &j, &err), PS_OK);
    assert_int_equal(pthread_create(&releaser, NULL, release_later, &j), 0);
    ps_task_destroy(task);
    assert_int_equal(j.runs, 1);
    pthread_join(releaser, NULL);
    ps_task_destroy(NULL);
    ps_task_wait(NULL);
    assert_false(ps_task_busy(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_busy_wait),
        cmocka_unit_test(test_destroy_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
