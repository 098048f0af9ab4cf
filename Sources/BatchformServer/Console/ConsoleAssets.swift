/// The console's script and style, served by Batchform itself (nothing is loaded from outside).
enum ConsoleAssets {
    /// Refreshes the jobs list while a job runs; on a job page, polls the job's JSON, updates the
    /// counts, objects, instances and log tail in place (as text, never as markup), and draws the
    /// throughput chart from what it has seen. Asks before stopping a job.
    static let script = #"""
        "use strict";
        (function () {
          const body = document.body;
          for (const form of document.querySelectorAll("form[data-confirm]")) {
            form.addEventListener("submit", (event) => {
              if (!window.confirm(form.dataset.confirm)) event.preventDefault();
            });
          }
          if (body.dataset.page === "jobs" && body.dataset.refresh) {
            setTimeout(() => window.location.reload(), Number(body.dataset.refresh) * 1000);
          }
          if (body.dataset.page !== "job") return;

          const name = body.dataset.job;
          const samples = [];
          const text = (element, value) => { if (element) element.textContent = value; };
          const cell = (value, className) => {
            const td = document.createElement("td");
            if (className) {
              const span = document.createElement("span");
              span.className = className;
              span.textContent = value;
              td.appendChild(span);
            } else {
              td.textContent = value;
            }
            return td;
          };
          const rows = (table, items, columns) => {
            const tbody = document.querySelector(table + " tbody");
            if (!tbody) return;
            tbody.replaceChildren(...items.map((item) => {
              const tr = document.createElement("tr");
              for (const column of columns) tr.appendChild(column(item));
              return tr;
            }));
          };
          const mb = (bytes) => {
            const units = ["B", "KB", "MB", "GB"];
            let unit = 0;
            while (bytes >= 1024 && unit < units.length - 1) { bytes /= 1024; unit++; }
            return (unit === 0 ? Math.round(bytes) : bytes.toFixed(1)) + " " + units[unit] + "/s";
          };

          function draw() {
            const canvas = document.getElementById("throughput");
            if (!canvas || samples.length < 2) return;
            const context = canvas.getContext("2d");
            const rates = [];
            for (let i = 1; i < samples.length; i++) {
              const seconds = (samples[i].time - samples[i - 1].time) / 1000;
              rates.push(seconds > 0 ? (samples[i].bytes - samples[i - 1].bytes) / seconds : 0);
            }
            const top = Math.max(...rates, 1);
            context.clearRect(0, 0, canvas.width, canvas.height);
            context.strokeStyle = "#2563eb";
            context.lineWidth = 2;
            context.beginPath();
            rates.forEach((rate, i) => {
              const x = rates.length === 1 ? 0 : (i / (rates.length - 1)) * (canvas.width - 4) + 2;
              const y = canvas.height - 14 - (rate / top) * (canvas.height - 24);
              if (i === 0) context.moveTo(x, y); else context.lineTo(x, y);
            });
            context.stroke();
            context.fillStyle = "#374151";
            context.font = "11px sans-serif";
            context.fillText("peak " + mb(top), 4, 11);
          }

          async function poll() {
            let job;
            try {
              const answer = await fetch("/console/api/jobs/" + encodeURIComponent(name), { credentials: "same-origin" });
              if (!answer.ok) return;
              job = await answer.json();
            } catch (error) {
              return;
            }
            if (job.status !== body.dataset.status && (body.dataset.status === "InProgress" || body.dataset.status === "Stopping")) {
              window.location.reload();  // ended: show the final state, the failure, no Stop button
              return;
            }
            text(document.getElementById("status"), job.status);
            text(document.getElementById("records-failed"), String(job.recordsFailed || 0));
            text(document.getElementById("record-error-count"), String(job.recordErrors || 0));
            const bar = document.querySelector("#progress-cell progress");
            if (bar && job.fractionDone !== null && job.fractionDone !== undefined) bar.value = job.fractionDone;
            const detail = document.querySelector("#progress-cell .detail");
            if (detail && job.recordsProcessed !== undefined) {
              let line = job.recordsProcessed.toLocaleString() + " records · " + job.objectsCompleted + " of " + job.objectsTotal + " objects";
              if (job.status === "InProgress") line += " · " + mb(job.bytesPerSecond || 0);
              if (job.secondsLeft) line += " · ETA " + Math.round(job.secondsLeft) + " s";
              detail.textContent = line;
            }
            rows("#objects", job.objects || [], [
              (o) => cell(o.input), (o) => cell(o.state, "state state-" + o.state), (o) => cell(o.output),
            ]);
            rows("#instances", job.instances || [], [
              (i) => cell(i.name), (i) => cell(i.state), (i) => cell(String(i.invocations)),
            ]);
            const logs = document.getElementById("logs");
            if (logs) {
              const atBottom = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
              logs.textContent = (job.logs || []).join("\n");
              if (atBottom) logs.scrollTop = logs.scrollHeight;
            }
            if (job.bytesProcessed !== undefined) samples.push({ time: Date.now(), bytes: job.bytesProcessed });
            if (samples.length > 120) samples.shift();
            draw();
            if (job.status === "InProgress" || job.status === "Stopping") setTimeout(poll, 1000);
          }
          poll();
        })();
        """#

    static let style = #"""
        :root { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #111827; background: #f9fafb; }
        body { margin: 0; }
        header { display: flex; justify-content: space-between; align-items: center; padding: 0.6rem 1.2rem;
          background: #111827; color: #f9fafb; }
        header form { margin: 0; }
        .brand { color: #f9fafb; font-weight: 600; text-decoration: none; }
        main { padding: 1rem 1.2rem; max-width: 72rem; }
        h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 1.4rem; }
        table { border-collapse: collapse; width: 100%; background: #fff; }
        th, td { text-align: left; padding: 0.35rem 0.6rem; border-bottom: 1px solid #e5e7eb; font-size: 0.92rem;
          vertical-align: top; word-break: break-all; }
        th { background: #f3f4f6; }
        .status { padding: 0.1rem 0.45rem; border-radius: 0.3rem; font-weight: 600; font-size: 0.85rem; }
        .status-InProgress, .status-Stopping { background: #dbeafe; color: #1e40af; }
        .status-Completed { background: #dcfce7; color: #166534; }
        .status-Failed { background: #fee2e2; color: #991b1b; }
        .status-Stopped { background: #e5e7eb; color: #374151; }
        .state { white-space: nowrap; } .state-failed { color: #991b1b; } .state-done { color: #166534; } .state-running { color: #1e40af; }
        progress { width: 9rem; vertical-align: middle; }
        .detail { color: #4b5563; font-size: 0.85rem; }
        pre { background: #111827; color: #e5e7eb; padding: 0.8rem; overflow: auto; max-height: 28rem; font-size: 0.8rem;
          white-space: pre-wrap; word-break: break-all; }
        #failure { background: #fef2f2; color: #7f1d1d; }
        dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; background: #fff; padding: 0.6rem; }
        dt { font-weight: 600; } dd { margin: 0; word-break: break-all; }
        canvas { background: #fff; border: 1px solid #e5e7eb; max-width: 100%; }
        form.sign-in { display: grid; gap: 0.7rem; max-width: 22rem; }
        form.sign-in input { display: block; width: 100%; padding: 0.4rem; margin-top: 0.2rem; }
        button { padding: 0.35rem 0.9rem; border-radius: 0.3rem; border: 1px solid #9ca3af; background: #fff; cursor: pointer; }
        #stop { background: #b91c1c; color: #fff; border-color: #991b1b; }
        .error { color: #991b1b; font-weight: 600; } .hint, .empty { color: #6b7280; }
        """#
}
