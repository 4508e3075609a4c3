// libpq, the PostgreSQL client library. PG_DIAG_SQLSTATE is a character
// macro; the wrapper hands it over as a value Swift can use.
#ifndef CPOSTGRES_SHIM_H
#define CPOSTGRES_SHIM_H
#include <libpq-fe.h>
static inline int CPostgres_DIAG_SQLSTATE(void) { return PG_DIAG_SQLSTATE; }
#endif
