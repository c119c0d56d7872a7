# Migration settings for a Flask app with several databases (binds) and async engines.
# The database URL and the script location come from the Flask app.

[alembic]
# template used to generate migration file names
# file_template = %%(rev)s_%%(slug)s

# set to 'true' to run the environment during
# the 'revision' command, regardless of autogenerate
# revision_environment = false

# how to split lists of paths such as version_locations
path_separator = os


# Logging configuration, used by the flask db commands
[loggers]
keys = root,sqlalchemy,alembic,alembic_plugins,flask_migrate_ext

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARN
handlers = console
qualname =

[logger_sqlalchemy]
level = WARN
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

# Alembic 1.16+ announces each autogenerate plugin at INFO: keep that quiet.
[logger_alembic_plugins]
level = WARN
handlers =
qualname = alembic.runtime.plugins

[logger_flask_migrate_ext]
level = INFO
handlers =
qualname = flask_migrate_ext

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
datefmt = %H:%M:%S
