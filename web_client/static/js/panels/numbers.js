// The event's numbers in the host console: the live dashboard, the orders,
// the report and the drops' logs, each in its own section of the page.
// A section the role may not use is removed (the report and the logs are
// the host's).

import { roleCan } from "../token.js";
import { mountDashboard } from "./dashboard.js";
import { mountOrders } from "./orders_panel.js";
import { mountReport } from "./report_panel.js";
import { mountDropLog } from "./drop_log.js";

const body = (id) => document.querySelector(`#${id} .panel-body`);

export function mountNumbers(ctx) {
  mountDashboard(body("dashboard-panel"), ctx);
  mountOrders(body("orders-panel"), ctx);
  if (!roleCan(ctx.role, "host")) {
    document.getElementById("report-panel").remove();
    document.getElementById("droplog-panel").remove();
    return;
  }
  mountReport(body("report-panel"), ctx);
  mountDropLog(body("droplog-panel"), ctx);
}
