/*
 * A fixed pool of backend connections shared by the server's threads. Both
 * backends keep their connection objects in one: acquire blocks until one
 * is free (the pool is sized to the number of threads that use it, so a
 * wait is short), release hands it back. Pure bookkeeping: what a
 * "connection" is belongs to the backend.
 */
#ifndef NEXRA_STORE_POOL_H
#define NEXRA_STORE_POOL_H

#include <pthread.h>

struct pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	void **items; /* all connections (owned by the backend) */
	void **free;  /* stack of free ones */
	int n, nfree;
};

/* 0 or E(INTERNAL). items is filled by the backend after init. */
int pool_init(struct pool *p, int n);
void pool_release(struct pool *p); /* frees the arrays, not the items */
void pool_put_initial(struct pool *p, int i, void *item);

void *pool_acquire(struct pool *p);
void pool_return(struct pool *p, void *item);

#endif
