/* The httpd/APR surface mod_wsgi_rs binds to. build.rs runs bindgen over this
 * file with the include paths the installed server reports (apxs, apr-1-config),
 * so the bindings always match the headers of the Apache we load into. */
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_connection.h>
#include <http_log.h>
#include <http_main.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_auth.h>
#include <ap_mpm.h>
#include <mpm_common.h>
#include <ap_mmn.h>
#include <util_script.h>
#include <apr_strings.h>
#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_buckets.h>
#include <apr_portable.h>
#include <apr_portable.h>
#include <apr_thread_proc.h>
#include <ap_listen.h>
#include <unixd.h>
#include <scoreboard.h>

/* Values that only exist as macros. Declared here as constants so that bindgen
 * evaluates them with the real headers instead of us typing numbers by hand. */
static const unsigned long MWRS_MODULE_MAGIC_COOKIE = MODULE_MAGIC_COOKIE;
static const int MWRS_MODULE_MAGIC_NUMBER_MAJOR = MODULE_MAGIC_NUMBER_MAJOR;
static const int MWRS_MODULE_MAGIC_NUMBER_MINOR = MODULE_MAGIC_NUMBER_MINOR;
static const int MWRS_APR_HOOK_MIDDLE = APR_HOOK_MIDDLE;
static const int MWRS_APR_HOOK_FIRST = APR_HOOK_FIRST;
static const int MWRS_APR_HOOK_REALLY_FIRST = APR_HOOK_REALLY_FIRST;
static const int MWRS_APR_HOOK_LAST = APR_HOOK_LAST;
static const int MWRS_APR_HOOK_REALLY_LAST = APR_HOOK_REALLY_LAST;
static const int MWRS_RSRC_CONF = RSRC_CONF;
static const int MWRS_ACCESS_CONF = ACCESS_CONF;
static const int MWRS_OR_FILEINFO = OR_FILEINFO;
static const int MWRS_OR_AUTHCFG = OR_AUTHCFG;
static const unsigned MWRS_GLOBAL_ONLY = GLOBAL_ONLY;
static const unsigned MWRS_NOT_IN_VIRTUALHOST = NOT_IN_VIRTUALHOST;
static const int MWRS_AP_REG_EXTENDED = AP_REG_EXTENDED;
static const int MWRS_OK = OK;
static const int MWRS_DECLINED = DECLINED;
static const int MWRS_DONE = DONE;
static const int MWRS_APLOG_EMERG = APLOG_EMERG;
static const int MWRS_APLOG_ALERT = APLOG_ALERT;
static const int MWRS_APLOG_CRIT = APLOG_CRIT;
static const int MWRS_APLOG_ERR = APLOG_ERR;
static const int MWRS_APLOG_WARNING = APLOG_WARNING;
static const int MWRS_APLOG_NOTICE = APLOG_NOTICE;
static const int MWRS_APLOG_INFO = APLOG_INFO;
static const int MWRS_APLOG_DEBUG = APLOG_DEBUG;
static const int MWRS_APLOG_STARTUP = APLOG_STARTUP;
static const int MWRS_APLOG_NOERRNO = APLOG_NOERRNO;
static const int MWRS_REQUEST_CHUNKED_ERROR = REQUEST_CHUNKED_ERROR;
static const int MWRS_REQUEST_CHUNKED_DECHUNK = REQUEST_CHUNKED_DECHUNK;
static const int MWRS_AP_FILTER_ERROR = AP_FILTER_ERROR;
static const int MWRS_AP_MODE_READBYTES = AP_MODE_READBYTES;
static const int MWRS_APR_BLOCK_READ = APR_BLOCK_READ;
static const int MWRS_APR_NONBLOCK_READ = APR_NONBLOCK_READ;
static const int MWRS_HTTP_VERSION_1_1 = HTTP_VERSION(1, 1);
static const int MWRS_APR_TIMEUP = APR_TIMEUP;
static const int MWRS_APR_INCOMPLETE = APR_INCOMPLETE;
static const int MWRS_APR_EOF = APR_EOF;
static const int MWRS_AP_CONN_CLOSE = AP_CONN_CLOSE;
static const int MWRS_AP_MPMQ_IS_THREADED = AP_MPMQ_IS_THREADED;
static const int MWRS_AP_MPMQ_IS_FORKED = AP_MPMQ_IS_FORKED;
static const int MWRS_AP_MPMQ_NOT_SUPPORTED = AP_MPMQ_NOT_SUPPORTED;
static const int MWRS_AP_MPMQ_STATIC = AP_MPMQ_STATIC;
static const int MWRS_AP_MPMQ_DYNAMIC = AP_MPMQ_DYNAMIC;
static const int MWRS_AP_MPMQ_MAX_DAEMONS = AP_MPMQ_MAX_DAEMONS;
static const int MWRS_AP_MPMQ_MAX_THREADS = AP_MPMQ_MAX_THREADS;
static const int MWRS_AP_MPMQ_GENERATION = AP_MPMQ_GENERATION;
static const int MWRS_APR_REG = APR_REG;
static const int MWRS_OPT_EXECCGI = OPT_EXECCGI;
static const int MWRS_APR_DIR = APR_DIR;
static const int MWRS_APR_NOFILE = APR_NOFILE;
static const int MWRS_HTTP_OK = HTTP_OK;
static const int MWRS_HTTP_BAD_REQUEST = HTTP_BAD_REQUEST;
static const int MWRS_HTTP_FORBIDDEN = HTTP_FORBIDDEN;
static const int MWRS_HTTP_NOT_FOUND = HTTP_NOT_FOUND;
static const int MWRS_HTTP_LENGTH_REQUIRED = HTTP_LENGTH_REQUIRED;
static const int MWRS_HTTP_REQUEST_ENTITY_TOO_LARGE = HTTP_REQUEST_ENTITY_TOO_LARGE;
static const int MWRS_HTTP_INTERNAL_SERVER_ERROR = HTTP_INTERNAL_SERVER_ERROR;
static const int MWRS_HTTP_BAD_GATEWAY = HTTP_BAD_GATEWAY;
static const int MWRS_HTTP_SERVICE_UNAVAILABLE = HTTP_SERVICE_UNAVAILABLE;
static const int MWRS_HTTP_GATEWAY_TIME_OUT = HTTP_GATEWAY_TIME_OUT;
static const int MWRS_M_GET = M_GET;
static const int MWRS_AP_AUTH_INTERNAL_PER_CONF = AP_AUTH_INTERNAL_PER_CONF;
static const int MWRS_REMOTE_NAME = REMOTE_NAME;
static const int MWRS_HTTP_UNAUTHORIZED = HTTP_UNAUTHORIZED;
static const int MWRS_AP_REQ_REJECT_PATH_INFO = AP_REQ_REJECT_PATH_INFO;
static const int MWRS_APR_OC_REASON_DEATH = APR_OC_REASON_DEATH;
static const int MWRS_APR_OC_REASON_UNWRITABLE = APR_OC_REASON_UNWRITABLE;
static const int MWRS_APR_OC_REASON_RESTART = APR_OC_REASON_RESTART;
static const int MWRS_APR_OC_REASON_UNREGISTER = APR_OC_REASON_UNREGISTER;
static const int MWRS_APR_OC_REASON_LOST = APR_OC_REASON_LOST;
static const int MWRS_APR_OC_REASON_RUNNING = APR_OC_REASON_RUNNING;
static const int MWRS_AP_MPMQ_MPM_STATE = AP_MPMQ_MPM_STATE;
static const int MWRS_AP_MPMQ_STOPPING = AP_MPMQ_STOPPING;
static const int MWRS_AP_MPMQ_IS_ASYNC = AP_MPMQ_IS_ASYNC;
static const int MWRS_AP_SQ_MAIN_STATE = AP_SQ_MAIN_STATE;
static const int MWRS_AP_SQ_MS_DESTROY_CONFIG = AP_SQ_MS_DESTROY_CONFIG;
static const int MWRS_APR_FOPEN_READ = APR_FOPEN_READ;
static const int MWRS_APR_FOPEN_SENDFILE_ENABLED = APR_FOPEN_SENDFILE_ENABLED;
static const int MWRS_ENABLE_MMAP_OFF = ENABLE_MMAP_OFF;
static const int MWRS_AP_CGI_PASS_AUTH_ON = AP_CGI_PASS_AUTH_ON;
static const int MWRS_AP_CORE_CONFIG_ON = AP_CORE_CONFIG_ON;
static const long MWRS_APR_HASH_KEY_STRING = APR_HASH_KEY_STRING;
static const int MWRS_AP_SERVER_MAJORVERSION_NUMBER = AP_SERVER_MAJORVERSION_NUMBER;
static const int MWRS_AP_SERVER_MINORVERSION_NUMBER = AP_SERVER_MINORVERSION_NUMBER;
static const int MWRS_AP_SERVER_PATCHLEVEL_NUMBER = AP_SERVER_PATCHLEVEL_NUMBER;
static const int MWRS_SERVER_NUM_STATUS = SERVER_NUM_STATUS;
static const int MWRS_SERVER_DEAD = SERVER_DEAD;
static const int MWRS_SERVER_STARTING = SERVER_STARTING;
static const int MWRS_SERVER_READY = SERVER_READY;
static const int MWRS_SERVER_BUSY_READ = SERVER_BUSY_READ;
static const int MWRS_SERVER_BUSY_WRITE = SERVER_BUSY_WRITE;
static const int MWRS_SERVER_BUSY_KEEPALIVE = SERVER_BUSY_KEEPALIVE;
static const int MWRS_SERVER_BUSY_LOG = SERVER_BUSY_LOG;
static const int MWRS_SERVER_BUSY_DNS = SERVER_BUSY_DNS;
static const int MWRS_SERVER_CLOSING = SERVER_CLOSING;
static const int MWRS_SERVER_GRACEFUL = SERVER_GRACEFUL;
static const int MWRS_SERVER_IDLE_KILL = SERVER_IDLE_KILL;
