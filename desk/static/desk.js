// The desk's one script (served from this origin: the CSP allows no inline script).
// Live countdowns to deadlines, the compensation preview, and a form sent once.
"use strict";

function spell(ms) {
  const minutes = Math.floor(Math.abs(ms) / 60000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const parts = [];
  if (days) parts.push(days + " d");
  if (days || hours) parts.push(hours + " h");
  parts.push((minutes % 60) + " min");
  return parts.join(" ");
}

function tick() {
  const now = Date.now();
  for (const element of document.querySelectorAll(".countdown[data-deadline]")) {
    const left = Date.parse(element.dataset.deadline) - now;
    element.textContent = left >= 0 ? "in " + spell(left) : "overdue by " + spell(left);
    element.classList.toggle("overdue", left < 0);
  }
}

function money(minor, currency) {
  return (minor / 100).toFixed(2) + " " + currency;
}

function preview(input) {
  const output = document.getElementById("preview");
  const remaining = Number(input.dataset.remainingMinor);
  const authority = input.dataset.authorityMinor === "" ? null : Number(input.dataset.authorityMinor);
  const currency = input.dataset.currency;
  const amount = Math.round(Number(input.value) * 100);
  if (!input.value || !Number.isFinite(amount) || amount <= 0) {
    output.textContent = "Remains refundable: " + money(remaining, currency);
  } else if (amount > remaining) {
    output.textContent = "Too much: only " + money(remaining, currency) + " remains refundable (R21)";
  } else if (authority !== null && amount > authority) {
    output.textContent = "Above your authority of " + money(authority, currency) +
      ": it will be refused and the case sent to a supervisor (R17, R18)";
  } else {
    output.textContent = "Pays " + money(amount, currency) + " now; " +
      money(remaining - amount, currency) + " remains refundable";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  tick();
  setInterval(tick, 15000);
  const amount = document.getElementById("amount");
  if (amount) {
    amount.addEventListener("input", () => preview(amount));
    preview(amount);
  }
  // A second click does nothing here; sent twice anyway, the action id decides once.
  for (const form of document.querySelectorAll("form[method=post]")) {
    form.addEventListener("submit", () => {
      for (const button of form.querySelectorAll("button[type=submit]")) button.disabled = true;
    });
  }
  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", () => {
      for (const box of document.querySelectorAll("input[name=case_id]")) box.checked = all.checked;
    });
  }
});
