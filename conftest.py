"""The plugin in a checkout that is not installed.

`pip install -r requirements.txt` installs this checkout, and pytest then loads the plugin
through the distribution's entry points, under these same names: here pytest finds them
registered and loads nothing twice. Where the checkout is not installed (or with
PYTEST_DISABLE_PLUGIN_AUTOLOAD), this loads them. Loaded from here, the plugin's options are
unknown while pytest looks for its rootdir: write a path option `--option=PATH` there.
"""

pytest_plugins = ["compliance.paths", "compliance.plugin"]
