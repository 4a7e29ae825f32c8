"""`webfleet init`: look at an app's directory and write a commented stack file for it.

detect.py picks the runtime (python_app.py with django_app.py and python_deps.py, node_app.py
know those two; health.py picks a health-like route), names.py makes an app name of the
directory's, stack_file.py renders templates/webfleet.toml.j2, write.py puts the file in place
without ever replacing one, and create.py does all of it in order.
"""
