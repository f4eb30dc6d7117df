/* Connection pool bookkeeping; see pool.h. */
#include "store/pool.h"

#include <stdlib.h>

#include "core/err.h"
#include "core/banned.h"

int pool_init(struct pool *p, int n)
{
	p->items = calloc((size_t)n, sizeof(void *));
	p->free = calloc((size_t)n, sizeof(void *));
	if (!p->items || !p->free) {
		free(p->items);
		free(p->free);
		return E(INTERNAL);
	}
	p->n = n;
	p->nfree = 0;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	return 0;
}

void pool_release(struct pool *p)
{
	free(p->items);
	free(p->free);
	p->items = p->free = NULL;
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
}

void pool_put_initial(struct pool *p, int i, void *item)
{
	p->items[i] = item;
	p->free[p->nfree++] = item;
}

void *pool_acquire(struct pool *p)
{
	void *item;

	pthread_mutex_lock(&p->mu);
	while (!p->nfree)
		pthread_cond_wait(&p->cv, &p->mu);
	item = p->free[--p->nfree];
	pthread_mutex_unlock(&p->mu);
	return item;
}

void pool_return(struct pool *p, void *item)
{
	pthread_mutex_lock(&p->mu);
	p->free[p->nfree++] = item;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}
