#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# A Python Gio client, asynchronous on a main loop: submits a job, follows it through an ObjectManager
# client and JobFinished, reads its output and releases it.
import sys

from gi.repository import Gio, GLib

BUS_NAME = "org.procpool.Supervisor1"
MANAGER_PATH = "/org/procpool/Supervisor1"
MANAGER_IFACE = "org.procpool.Supervisor1"
JOB_IFACE = "org.procpool.Job1"


class Example:
    def __init__(self, loop):
        self.loop = loop
        self.bus = None
        self.manager = None
        self.path = None
        self.finished = set()  # paths JobFinished named, in case it comes before Submit's answer
        self.status = 1

    def fail(self, message):
        print(f"submit-and-wait: {message}", file=sys.stderr)
        self.loop.quit()

    def start(self):
        Gio.bus_get(Gio.BusType.SESSION, None, self.on_bus)

    def on_bus(self, source, result):
        self.bus = Gio.bus_get_finish(result)
        # No proxy type function: every interface gets a plain Gio.DBusProxy.
        Gio.DBusObjectManagerClient.new(self.bus, Gio.DBusObjectManagerClientFlags.NONE, BUS_NAME,
                                        MANAGER_PATH, None, None, None, self.on_manager)

    def on_manager(self, source, result):
        self.manager = Gio.DBusObjectManagerClient.new_finish(result)
        self.manager.connect("object-added", lambda om, obj: print(f"added {obj.get_object_path()}"))
        # Subscribed before the job exists, so that its end cannot be missed.
        self.bus.signal_subscribe(BUS_NAME, MANAGER_IFACE, "JobFinished", MANAGER_PATH, None,
                                  Gio.DBusSignalFlags.NONE, self.on_job_finished)
        # Options are a{sv}: each value carries its D-Bus type, as GLib.Variant does.
        options = {
            "label": GLib.Variant("s", "python example"),
            "environment": GLib.Variant("as", ["GREETING=hello"]),
            "timeout-usec": GLib.Variant("t", 60 * 1000 * 1000),
        }
        args = GLib.Variant("(asa{sv})", (["sh", "-c", 'echo "$GREETING from job"; exit 3'], options))
        self.bus.call(BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Submit", args, GLib.VariantType("(o)"),
                      Gio.DBusCallFlags.NONE, -1, None, self.on_submitted)

    def on_submitted(self, source, result):
        try:
            (self.path,) = self.bus.call_finish(result).unpack()
        except GLib.Error as e:
            return self.fail(f"Submit failed: {e.message}")
        print(f"submitted {self.path}")
        if self.path in self.finished:
            self.on_end()

    def on_job_finished(self, conn, sender, path, iface, signal, params):
        job_id, job_path, state, returncode = params.unpack()
        print(f"JobFinished {job_id} {state} {returncode}")
        self.finished.add(job_path)
        if job_path == self.path:
            self.on_end()

    def on_end(self):
        # The job's last PropertiesChanged came before JobFinished: the cached proxy is final.
        job = self.manager.get_interface(self.path, JOB_IFACE)
        if job is None:
            return self.fail(f"{self.path} is not among the managed objects")
        state = job.get_cached_property("State").unpack()
        returncode = job.get_cached_property("ReturnCode").unpack()
        if state != "exited" or returncode != 3:
            return self.fail(f"cached State {state}, ReturnCode {returncode}; expected exited, 3")
        job.call("GetOutput", None, Gio.DBusCallFlags.NONE, -1, None, self.on_output)

    def on_output(self, job, result):
        out, err = job.call_finish(result).unpack()
        if bytes(out) != b"hello from job\n" or bytes(err) != b"":
            return self.fail(f"output {bytes(out)!r}, {bytes(err)!r}")
        print(f"stdout {bytes(out)!r}")
        job.call("Release", None, Gio.DBusCallFlags.NONE, -1, None, self.on_released)

    def on_released(self, job, result):
        job.call_finish(result)
        # Release answers after InterfacesRemoved: the ObjectManager client has let the job go.
        if self.manager.get_object(self.path) is not None:
            return self.fail(f"{self.path} is still managed after Release")
        self.status = 0
        self.loop.quit()


def main():
    loop = GLib.MainLoop()
    example = Example(loop)

    # An exception in a callback is printed and the loop goes on: end it instead, as failed.
    def excepthook(*exc_info):
        sys.__excepthook__(*exc_info)
        loop.quit()

    sys.excepthook = excepthook
    example.start()

    def timeout():
        example.fail("no answer within 60 s")
        return GLib.SOURCE_REMOVE

    GLib.timeout_add_seconds(60, timeout)
    loop.run()
    return example.status


if __name__ == "__main__":
    sys.exit(main())
